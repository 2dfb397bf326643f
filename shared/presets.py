"""Model presets: which student, teacher and estimator serve a job, and their serving settings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from shared.errors import InputError
from shared.status import Strategy

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
PERCENTILES_DIR = DATA_DIR / "percentiles"


@dataclass(frozen=True)
class ModelSpec:
    """Where a diffusion pipeline comes from. ``source`` is a hub id, a local folder, or "tiny:<role>"."""

    source: str
    label: str  # human name used in error messages, e.g. "SDXL-Turbo"
    unet: str | None = None  # a separate UNet repo (LCM-SDXL swaps the base UNet)
    variant: str | None = None  # "fp16" weight files, used on CUDA only
    scheduler: str | None = None  # diffusers scheduler class to swap in


@dataclass(frozen=True)
class EstimatorSpec:
    kind: str  # "imagereward" | "pickscore" | "tiny" | "shapes" | "null"
    source: str | None = None  # pickscore: the CLIPModel folder or hub id
    processor: str | None = None  # pickscore: the CLIPProcessor folder or hub id


@dataclass(frozen=True)
class Preset:
    name: str
    student: ModelSpec
    teacher: ModelSpec
    student_steps: int
    student_guidance: float
    student_size: tuple[int, int]  # (width, height) the student generates at
    teacher_steps: int
    teacher_guidance: float
    teacher_size: tuple[int, int]  # the teacher's resolution; the student image is resized to it before refinement
    sigma: float
    estimator: EstimatorSpec = EstimatorSpec("imagereward")
    k: int = 50
    strategy: Strategy = Strategy.REFINE
    regenerator: ModelSpec | None = None  # text2img model for regeneration; None means the teacher's components
    percentiles_file: str | None = None  # shipped calibration under data/percentiles/; default "<name>.json"
    grammar: str | None = None  # "shapes": prompts must parse in the shapes world (its estimator grades attributes)
    notes: str = ""

    @property
    def percentiles_path(self) -> Path | None:
        return PERCENTILES_DIR / (self.percentiles_file or f"{self.name}.json")


def student_settings(preset: str, steps: int, guidance: float, width: int, height: int) -> dict:
    """The student settings a calibration must match; their hash keys the calibration table."""
    spec = get_preset(preset).student
    return {
        "preset": preset,
        "student": spec.source,
        "unet": spec.unet,
        "steps": int(steps),
        "guidance": round(float(guidance), 6),
        "width": int(width),
        "height": int(height),
    }


def settings_hash(student: dict) -> str:
    return hashlib.sha256(json.dumps(student, sort_keys=True).encode()).hexdigest()[:16]


PRESETS_FILE = Path(__file__).resolve().parent / "presets.yaml"


def _load(path: Path = PRESETS_FILE) -> dict[str, Preset]:
    """The preset table is data (presets.yaml), read into the dataclasses above once, at import."""
    import yaml

    out = {}
    for name, entry in yaml.safe_load(path.read_text()).items():
        models = {role: ModelSpec(**entry.pop(role)) for role in ("student", "teacher", "regenerator") if role in entry}
        sizes = {key: tuple(entry.pop(key)) for key in ("student_size", "teacher_size")}
        raw = entry.pop("estimator", "imagereward")
        estimator = EstimatorSpec(**raw) if isinstance(raw, dict) else EstimatorSpec(raw)
        strategy = Strategy(entry.pop("strategy", Strategy.REFINE))
        out[name] = Preset(name=name, estimator=estimator, strategy=strategy, **models, **sizes, **entry)
    return out


PRESETS: dict[str, Preset] = _load()


def preset_names() -> list[str]:
    return sorted(PRESETS)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}") from None

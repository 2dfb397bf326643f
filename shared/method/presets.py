"""Model presets: which student, teacher and estimator serve a job, and their serving settings.

The built-in table is ``presets.yaml``; ``ADQ_PRESETS_FILE`` names YAML files of your own in the same format, which
add presets or override built-in ones of the same name (later files win). Every entry is validated with pydantic
when it is read, and an error names the file, the preset and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adq.core.errors import InputError
from adq.core.resources import data_path
from adq.core.status import Strategy
from adq.method.models.safety import SafetySpec

PRESETS_FILE = Path(__file__).resolve().parent / "presets.yaml"
BUILT_IN = "built in"
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
# "pipeline": the estimator object of a served AdaptiveDiffusionPipeline (adq worker --pipeline), never loaded by kind.
OUTPUT_FORMATS = ("png", "jpeg", "webp")
ESTIMATOR_KINDS = ("imagereward", "pickscore", "tiny", "shapes", "shapes-judge", "null", "python", "pipeline")


class PresetFileError(InputError):
    """A presets file is unreadable or an entry in it is invalid; the message names the file, preset and field."""


@dataclass(frozen=True)
class LoraSpec:
    source: str  # a folder or hub id holding diffusers-format LoRA weights
    scale: float = 1.0
    weight_name: str = LORA_WEIGHTS


@dataclass(frozen=True)
class BatchSpec:
    """Most jobs of one role that share one model call (same preset, mode, steps, sigma, size and guidance). A
    batched image equals the single run's up to kernel rounding; ADQ_DETERMINISTIC=true runs every job alone."""

    student: int = 8
    teacher: int = 4


@dataclass(frozen=True)
class ModelSpec:
    """Where a diffusion pipeline comes from. ``source`` is a hub id, a local folder, or "tiny:<name>"."""

    source: str
    label: str  # human name used in error messages, e.g. "SDXL-Turbo"
    unet: str | None = None  # a separate UNet repo (LCM-SDXL swaps the base UNet)
    variant: str | None = None  # "fp16" weight files, used on CUDA only
    scheduler: str | None = None  # diffusers scheduler class to swap in
    lora: tuple[LoraSpec, ...] = ()  # adapters on the base (a LoRA student shares its teacher's base weights)
    dtype: str | None = None  # on CUDA: float16, bfloat16 or float32; None picks the family's (models/precision.py)


@dataclass(frozen=True)
class ControlNetSpec:
    """A ControlNet for controllable generation: a folder, hub id or "tiny:<name>" whose config names its class
    (ControlNetModel for UNet families, SD3ControlNetModel, FluxControlNetModel)."""

    source: str
    label: str = "ControlNet"
    scale: float = 1.0  # controlnet_conditioning_scale


@dataclass(frozen=True)
class EstimatorSpec:
    kind: str  # one of ESTIMATOR_KINDS
    source: str | None = None  # pickscore: the CLIPModel folder or hub id
    processor: str | None = None  # pickscore: the CLIPProcessor folder or hub id
    factory: str | None = None  # python: "package.module:callable" returning an object with score(prompts, images)


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
    judge: EstimatorSpec | None = None  # grades `adq tune` (never routes); None: tune needs --judge
    strength: float = 0.6  # image-to-image jobs: how far from the input image (SDEdit's strength)
    controlnet: ControlNetSpec | None = None  # control jobs: one ControlNet that serves the teacher and the student
    student_controlnet: ControlNetSpec | None = None  # a student of another architecture: its own ControlNet
    batch: BatchSpec = BatchSpec()
    output_format: str = "png"  # the final image's default format: png, jpeg or webp (a job may ask for another)
    output_quality: int = 80  # jpeg and webp quality, 1-100
    sizes: tuple = ()  # the (width, height) sizes jobs may ask for; empty: any (a calibration still keys each)
    safety: SafetySpec | None = None  # a filter on final images (adq.method.models.safety); None: off
    group: str | None = None  # its own queues, student.<group> and teacher.<group> (adq.jobs.routes); None: shared
    notes: str = ""
    origin: str = BUILT_IN  # "built in", or the presets file it came from

    @property
    def percentiles_path(self) -> Path | None:
        return data_path("percentiles") / (self.percentiles_file or f"{self.name}.json")


# The file format, validated. Field names are the dataclasses' own, so a preset is written once.
def user_files(value: str | None = None) -> list[Path]:
    from adq.core.config import get_settings

    value = get_settings().presets_file if value is None else value
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def _table(files: str) -> dict[str, Preset]:
    """Read once per process and value of the setting (adq.core.process holds it)."""
    from adq.core import process

    def load() -> dict[str, Preset]:
        table = load_file(PRESETS_FILE, BUILT_IN)
        for path in user_files(files):
            table |= load_file(path)
        return table

    return process.once(("presets", files), load)


_runtime: dict[str, Preset] = {}  # presets of Python pipeline objects made in this process (adq.method.adaptive)


_sources: list[Callable[[str], dict | None]] = []  # where unknown names are looked up (adq.jobs adds the DB)


def add_source(lookup: Callable[[str], dict | None]) -> None:
    """Look names this process does not know up in ``lookup`` too (it returns a presets-file entry or None)."""
    if lookup not in _sources:
        _sources.append(lookup)


def register(preset: Preset) -> None:
    """Make a preset known to this process (an AdaptiveDiffusionPipeline registers its own)."""
    _runtime[preset.name] = preset


def all_presets() -> dict[str, Preset]:
    """Built-in presets with ADQ_PRESETS_FILE's applied (read once per value of the setting), and this process's
    pipeline objects'."""
    from adq.core.config import get_settings

    return _table(get_settings().presets_file) | _runtime


def preset_names() -> list[str]:
    return sorted(all_presets())


def get_preset(name: str) -> Preset:
    table = all_presets()
    if name in table:
        return table[name]
    for source in _sources:  # a preset served by a pipeline worker elsewhere (adq worker --pipeline)
        entry = source(name) if isinstance(name, str) else None
        if entry is not None:
            return _declared(name, entry)
    raise InputError(f"unknown preset {name!r}; choose one of {', '.join(sorted(table))}")


def _declared(name: str, entry: dict) -> Preset:
    """A row of declared_presets. Whoever can write that table must not get a process to import a module: such a
    preset's estimator is the served object's own (``pipeline``), and it names no judge of kind ``python``."""
    origin = "declared by a pipeline worker"
    preset = from_entry(name, entry, origin=origin)
    python = any(x is not None and x.kind == "python" for x in (preset.judge, preset.safety))
    if preset.estimator.kind != "pipeline" or python:
        raise PresetFileError(f"{origin}: preset {name!r}: a declared preset's estimator must be of kind 'pipeline'")
    return preset


def to_entry(preset: Preset) -> dict:
    """The presets-file form of a preset (what ``from_entry`` reads back)."""
    from dataclasses import asdict

    entry = asdict(preset)
    for key in ("name", "origin"):
        entry.pop(key)
    entry["strategy"] = Strategy(preset.strategy).value
    for key in ("estimator", "judge"):
        if entry.get(key) is not None:
            entry[key] = {k: v for k, v in entry[key].items() if v is not None}
    for role in ("student", "teacher", "regenerator"):
        if entry.get(role) is None:
            entry.pop(role, None)
            continue
        entry[role] = {k: v for k, v in entry[role].items() if v not in (None, [], ())}
    for key in ("student_size", "teacher_size"):
        entry[key] = list(entry[key])
    return {k: v for k, v in entry.items() if v is not None}


def student_settings(
    preset: str, steps: int, guidance: float, width: int, height: int, mode: str = "text2image", strength=None
) -> dict:
    """The student settings a calibration must match; their hash keys the calibration table (and the live score
    window). A mode other than text-to-image keys its own: its scores follow another distribution."""
    spec = get_preset(preset).student
    settings = {
        "preset": preset,
        "student": spec.source,
        "unet": spec.unet,
        "steps": int(steps),
        "guidance": round(float(guidance), 6),
        "width": int(width),
        "height": int(height),
    }
    if spec.lora:  # only when present, so the calibrations of presets without adapters keep their keys
        settings["lora"] = [[x.source, x.scale] for x in spec.lora]
    if mode != "text2image":  # likewise: text-to-image keys are the ones calibrated before modes existed
        settings["mode"] = mode
        if strength is not None:
            settings["strength"] = round(float(strength), 6)
    return settings


def settings_hash(student: dict) -> str:
    return hashlib.sha256(json.dumps(student, sort_keys=True).encode()).hexdigest()[:16]


# The presets file's format reads into the specs above; it is a module of its own (adq.method.presetfile), which
# imports this one, so these two reach it at call time and either module may be imported first.
def load_file(path: Path, origin: str | None = None) -> dict[str, Preset]:
    """The presets in one YAML file; PresetFileError names the file, the preset and the field of the first fault."""
    from adq.method import presetfile

    return presetfile.load_file(path, origin)


def from_entry(name: str, entry: dict, origin: str) -> Preset:
    """A preset from the presets-file format, validated (PresetFileError names the preset and the field)."""
    from adq.method import presetfile

    return presetfile.from_entry(name, entry, origin)

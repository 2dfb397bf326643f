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
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adq.core.errors import InputError
from adq.core.resources import data_path
from adq.core.status import Strategy

PRESETS_FILE = Path(__file__).resolve().parent / "presets.yaml"
BUILT_IN = "built in"
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
# "pipeline": the estimator object of a served AdaptiveDiffusionPipeline (adq worker --pipeline), never loaded by kind.
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
    notes: str = ""
    origin: str = BUILT_IN  # "built in", or the presets file it came from

    @property
    def percentiles_path(self) -> Path | None:
        return data_path("percentiles") / (self.percentiles_file or f"{self.name}.json")


# The file format, validated. Field names are the dataclasses' own, so a preset is written once.
class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Lora(_Entry):
    source: str = Field(min_length=1)
    scale: float = Field(1.0, ge=0, le=10)
    weight_name: str = LORA_WEIGHTS


class _Model(_Entry):
    source: str = Field(min_length=1)
    label: str | None = None
    unet: str | None = None
    variant: str | None = None
    scheduler: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9]*Scheduler$")
    lora: list[_Lora] = []
    dtype: Literal["float16", "bfloat16", "float32"] | None = None  # on CUDA; None: the family's (precision.py)


class _ControlNet(_Entry):
    source: str = Field(min_length=1)
    label: str = "ControlNet"
    scale: float = Field(1.0, ge=0, le=5)


class _Estimator(_Entry):
    kind: Literal[ESTIMATOR_KINDS]  # type: ignore[valid-type]
    source: str | None = None
    processor: str | None = None
    factory: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

    @model_validator(mode="after")
    def _factory_for_python(self):
        if self.kind == "python" and not self.factory:
            raise ValueError("an estimator of kind python needs factory: 'package.module:callable'")
        return self


OUTPUT_FORMATS = ("png", "jpeg", "webp")
Size = tuple[int, int]


class _Batch(_Entry):
    student: int = Field(8, ge=1, le=64)
    teacher: int = Field(4, ge=1, le=64)


class _Preset(_Entry):
    student: _Model
    teacher: _Model
    regenerator: _Model | None = None
    student_steps: int = Field(ge=1, le=200)
    student_guidance: float = Field(ge=0, le=50)
    student_size: Size
    teacher_steps: int = Field(ge=1, le=200)
    teacher_guidance: float = Field(ge=0, le=50)
    teacher_size: Size
    sigma: float = Field(gt=0, le=1)
    estimator: _Estimator | Literal[ESTIMATOR_KINDS] = "imagereward"  # type: ignore[valid-type]
    k: int = Field(50, ge=0, le=100)
    strategy: Strategy = Strategy.REFINE
    percentiles_file: str | None = None
    grammar: Literal["shapes"] | None = None
    judge: _Estimator | Literal[ESTIMATOR_KINDS] | None = None  # type: ignore[valid-type]
    strength: float = Field(0.6, gt=0, le=1)
    controlnet: _ControlNet | None = None
    student_controlnet: _ControlNet | None = None
    batch: _Batch = _Batch()
    output_format: Literal[OUTPUT_FORMATS] = "png"  # type: ignore[valid-type]
    output_quality: int = Field(80, ge=1, le=100)
    sizes: list[Size] = []
    notes: str = ""

    @field_validator("student_size", "teacher_size")
    @classmethod
    def _positive(cls, v):
        if not all(8 <= side <= 4096 for side in v):
            raise ValueError(f"{list(v)}: each side must be between 8 and 4096")
        return v

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v):
        for size in v:
            if not all(8 <= side <= 4096 and side % 8 == 0 for side in size):
                raise ValueError(f"{list(size)}: each side must be a multiple of 8 between 8 and 4096")
        return v


def _model(entry: _Model, name: str, role: str) -> ModelSpec:
    lora = tuple(LoraSpec(**x.model_dump()) for x in entry.lora)
    fields = entry.model_dump(exclude={"lora", "label"})
    return ModelSpec(**fields, label=entry.label or f"{name} {role}", lora=lora)


def _preset(name: str, entry: _Preset, origin: str) -> Preset:
    est = entry.estimator
    models = {
        role: _model(getattr(entry, role), name, role)
        for role in ("student", "teacher", "regenerator")
        if getattr(entry, role) is not None
    }
    nets = {
        role: ControlNetSpec(**getattr(entry, role).model_dump())
        for role in ("controlnet", "student_controlnet")
        if getattr(entry, role) is not None
    }
    rest = entry.model_dump(exclude={"student", "teacher", "regenerator", "estimator", "judge", "batch", *nets})
    rest = {k: v for k, v in rest.items() if k not in ("controlnet", "student_controlnet")}
    rest["sizes"] = tuple(tuple(size) for size in rest["sizes"])
    judge = None if entry.judge is None else _estimator_spec(entry.judge)
    batch = BatchSpec(**entry.batch.model_dump())
    spec = dict(estimator=_estimator_spec(est), judge=judge, batch=batch, origin=origin)
    return Preset(name=name, **models, **rest, **nets, **spec)


def _estimator_spec(est) -> EstimatorSpec:
    return EstimatorSpec(est) if isinstance(est, str) else EstimatorSpec(**est.model_dump())


def _where(error: dict) -> str:
    return ".".join(str(part) for part in error["loc"] if not str(part).startswith(("function-after", "literal")))


def _fault(error: dict) -> str:
    got = error.get("input")
    shown = f" (got {got!r})" if got is not None and not isinstance(got, dict) and error["type"] != "missing" else ""
    return f"field {_where(error)!r}: {error['msg']}{shown}"


def load_file(path: Path, origin: str | None = None) -> dict[str, Preset]:
    """The presets in one YAML file; PresetFileError names the file, the preset and the field of the first fault."""
    import yaml

    origin = origin or str(path)
    try:
        table = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PresetFileError(f"presets file {path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise PresetFileError(f"presets file {path}: not valid YAML ({exc})") from None
    if not isinstance(table, dict) or not table:
        raise PresetFileError(f"presets file {path}: expected a mapping of preset names to presets")
    out = {}
    for name, entry in table.items():
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise PresetFileError(f"presets file {path}: preset name {name!r} must be letters, digits, - and _")
        try:
            out[name] = _preset(name, _Preset.model_validate(entry), origin)
        except ValidationError as exc:
            # A table given for a field that is "a table or a name" fails the name branch too: say only the table's.
            errors = [e for e in exc.errors() if not (e["type"] == "literal_error" and isinstance(e["input"], dict))]
            faults = "; ".join(_fault(e) for e in errors or exc.errors())
            raise PresetFileError(f"presets file {path}: preset {name!r}: {faults}") from None
    return out


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
    if preset.estimator.kind != "pipeline" or (preset.judge is not None and preset.judge.kind == "python"):
        raise PresetFileError(f"{origin}: preset {name!r}: a declared preset's estimator must be of kind 'pipeline'")
    return preset


def from_entry(name: str, entry: dict, origin: str) -> Preset:
    """A preset from the presets-file format, validated (PresetFileError names the preset and the field)."""
    try:
        return _preset(name, _Preset.model_validate(entry), origin)
    except ValidationError as exc:
        faults = "; ".join(_fault(e) for e in exc.errors())
        raise PresetFileError(f"{origin}: preset {name!r}: {faults}") from None


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

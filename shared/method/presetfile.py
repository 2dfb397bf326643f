"""The presets file's format (YAML, validated with pydantic): each entry read into the frozen specs of
adq.method.presets, with errors that name the file, the preset and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adq.core.status import Strategy
from adq.method.models.safety import PLACEHOLDERS, SAFETY_KINDS, SafetySpec
from adq.method.presets import (
    ESTIMATOR_KINDS,
    LORA_WEIGHTS,
    OUTPUT_FORMATS,
    BatchSpec,
    ControlNetSpec,
    EstimatorSpec,
    LoraSpec,
    ModelSpec,
    Preset,
    PresetFileError,
)


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


class _Safety(_Entry):
    kind: Literal[SAFETY_KINDS]  # type: ignore[valid-type]
    factory: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
    source: str | None = None
    placeholder: Literal[PLACEHOLDERS] = "black"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _what_it_needs(self):
        if self.kind == "python" and not self.factory:
            raise ValueError("a safety filter of kind python needs factory: 'package.module:callable'")
        if self.kind == "diffusers" and not self.source:
            raise ValueError("a safety filter of kind diffusers needs source: the StableDiffusionSafetyChecker folder")
        return self


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
    safety: _Safety | None = None
    group: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
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
    skip = {"student", "teacher", "regenerator", "estimator", "judge", "batch", "safety", *nets}
    rest = entry.model_dump(exclude=skip)
    rest = {k: v for k, v in rest.items() if k not in ("controlnet", "student_controlnet")}
    rest["sizes"] = tuple(tuple(size) for size in rest["sizes"])
    judge = None if entry.judge is None else _estimator_spec(entry.judge)
    batch = BatchSpec(**entry.batch.model_dump())
    spec = dict(estimator=_estimator_spec(est), judge=judge, batch=batch, origin=origin)
    spec["safety"] = None if entry.safety is None else SafetySpec(**entry.safety.model_dump())
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


def from_entry(name: str, entry: dict, origin: str) -> Preset:
    """A preset from the presets-file format, validated (PresetFileError names the preset and the field)."""
    try:
        return _preset(name, _Preset.model_validate(entry), origin)
    except ValidationError as exc:
        faults = "; ".join(_fault(e) for e in exc.errors())
        raise PresetFileError(f"{origin}: preset {name!r}: {faults}") from None

"""Job parameters: resolved from a preset plus overrides, and checked before anything is written or enqueued."""

from __future__ import annotations

import math
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

from shared.config import settings
from shared.errors import InputError
from shared.presets import get_preset, settings_hash, student_settings

STRATEGIES = ("refine", "regenerate")
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class JobParams:
    prompt: str
    preset: str
    seed: int
    k: int
    sigma: float
    strategy: str
    student_steps: int
    student_guidance: float
    teacher_steps: int
    teacher_guidance: float
    width: int
    height: int

    def student_settings(self) -> dict:
        return student_settings(self.preset, self.student_steps, self.student_guidance, self.width, self.height)

    def student_hash(self) -> str:
        return settings_hash(self.student_settings())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve(prompt: Any, *, preset: str | None = None, **overrides: Any) -> JobParams:
    """Fill unset parameters from the preset, then check every value. Raises InputError naming the bad value."""
    p = get_preset(preset or settings.preset)
    unknown = set(overrides) - set(JobParams.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    values = {k: v for k, v in overrides.items() if v is not None}
    params = JobParams(
        prompt=prompt, preset=p.name,
        seed=values.get("seed", secrets.randbelow(2**31)),
        k=values.get("k", p.k), sigma=values.get("sigma", p.sigma), strategy=values.get("strategy", p.strategy),
        student_steps=values.get("student_steps", p.student_steps),
        student_guidance=values.get("student_guidance", p.student_guidance),
        teacher_steps=values.get("teacher_steps", p.teacher_steps),
        teacher_guidance=values.get("teacher_guidance", p.teacher_guidance),
        width=values.get("width", p.student_size[0]), height=values.get("height", p.student_size[1]),
    )
    return check_inputs(params)


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InputError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value!r}")
    return value


def check_sigma(sigma: Any) -> float:
    sigma = _float("sigma", sigma)
    if not 0.0 < sigma <= 1.0:
        raise InputError(f"sigma={sigma} is out of range (0, 1]: it is the fraction of the noise schedule to roll back")
    return sigma


def check_k(k: Any) -> int:
    return _int("k", k, 0, 100)


def check_inputs(params: JobParams) -> JobParams:
    if not isinstance(params.prompt, str):
        raise InputError(f"prompt must be a string, got {type(params.prompt).__name__}")
    prompt = params.prompt.strip()
    if not prompt:
        raise InputError("prompt is empty")
    if len(prompt) > settings.max_prompt_chars:
        raise InputError(f"prompt has {len(prompt)} characters; the limit is {settings.max_prompt_chars}")
    if "\x00" in prompt:
        raise InputError("prompt contains a NUL character")
    if get_preset(params.preset).grammar == "shapes":
        from shared.shapes.world import parse

        try:
            parse(prompt)
        except ValueError:
            raise InputError(f"prompt {prompt!r} is not in the shapes world's grammar, e.g. \"a large red triangle "
                             f"at the top left on a light blue background\"") from None
    if params.strategy not in STRATEGIES:
        raise InputError(f"strategy={params.strategy!r} is unknown; choose one of {', '.join(STRATEGIES)}")
    guidance = {}
    for name in ("student_guidance", "teacher_guidance"):
        guidance[name] = _float(name, getattr(params, name))
        if not 0.0 <= guidance[name] <= 50.0:
            raise InputError(f"{name}={guidance[name]} is out of range [0, 50]")
    side = settings.max_image_side
    width, height = _int("width", params.width, 8, side), _int("height", params.height, 8, side)
    for name, v in (("width", width), ("height", height)):
        if v % 8:
            raise InputError(f"{name}={v} must be a multiple of 8")
    return replace(
        params, prompt=prompt, seed=_int("seed", params.seed, 0, MAX_SEED), k=check_k(params.k),
        sigma=check_sigma(params.sigma),
        student_steps=_int("student_steps", params.student_steps, 1, settings.max_steps),
        teacher_steps=_int("teacher_steps", params.teacher_steps, 1, settings.max_steps),
        width=width, height=height, **guidance,
    )

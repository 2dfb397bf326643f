"""Heavy things load once per worker process, on first use, in the process that uses them."""

from __future__ import annotations

from functools import lru_cache

from shared.presets import get_preset


def _device():
    from shared.models.device import configure_torch, resolve_device

    configure_torch()
    return resolve_device()


@lru_cache(maxsize=4)
def student(preset_name: str):
    from shared.models import diffusion

    preset = get_preset(preset_name)
    if preset.student.source.startswith("null:"):
        return diffusion.NullStudent(preset)
    return diffusion.DiffusionStudent(preset, _device())


@lru_cache(maxsize=4)
def teacher(preset_name: str):
    from shared.models import diffusion

    preset = get_preset(preset_name)
    if preset.teacher.source.startswith("null:"):
        return diffusion.NullTeacher(preset)
    return diffusion.DiffusionTeacher(preset, _device())


@lru_cache(maxsize=4)
def estimator(preset_name: str):
    from shared.models.estimators import NullEstimator, load_estimator

    kind = get_preset(preset_name).estimator.kind
    return NullEstimator() if kind == "null" else load_estimator(kind, _device())


def clear() -> None:
    for fn in (student, teacher, estimator):
        fn.cache_clear()

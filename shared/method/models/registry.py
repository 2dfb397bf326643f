"""Heavy things load once per worker process, on first use, in the process that uses them."""

from __future__ import annotations

from contextlib import nullcontext

from adq.core import process
from adq.method.models import residency
from adq.method.presets import get_preset


def _device():
    from adq.method.models.device import configure_torch, resolve_device

    configure_torch()
    return resolve_device()


def _diffusion(role: str, preset_name: str):
    """The preset's student or teacher: a null model for the overhead benchmark, else a diffusers pipeline."""
    from adq.method.models import diffusion, null

    preset = get_preset(preset_name)
    null, real = {
        "student": (null.NullStudent, diffusion.DiffusionStudent),
        "teacher": (null.NullTeacher, diffusion.DiffusionTeacher),
    }[role]
    if getattr(preset, role).source.startswith("null:"):
        return null(preset)
    return real(preset, _device())


_served: dict[str, tuple] = {}  # preset -> (student, teacher, estimator) of a Python pipeline object


def serve(name: str, student_, teacher_, estimator_) -> None:
    """Models this process already holds (an AdaptiveDiffusionPipeline), served under its preset's name."""
    _served[name] = (student_, teacher_, estimator_)


def student(preset_name: str):
    return _served[preset_name][0] if preset_name in _served else _student(preset_name)


def teacher(preset_name: str):
    return _served[preset_name][1] if preset_name in _served else _teacher(preset_name)


def estimator(preset_name: str):
    return _served[preset_name][2] if preset_name in _served else _estimator(preset_name)


def _null(preset_name: str) -> bool:
    """A preset of null models only (the overhead benchmark's): no weights to budget, and no torch to import."""
    preset = get_preset(preset_name)
    sources = (preset.student.source, preset.teacher.source)
    return all(s.startswith("null:") for s in sources) and preset.estimator.kind == "null"


def using(preset_name: str):
    """Hold the preset's models while a call runs: the memory budget never evicts them meanwhile."""
    if preset_name in _served or _null(preset_name):
        return nullcontext()
    return residency.current(_device()).using(preset_name)


def _made_for(preset_name: str, make):
    # What a preset's object loads (its bases, ControlNets) is recorded as used by it (adq.method.models.residency)
    with using(preset_name):
        return make()


def _student(preset_name: str):
    key = ("model", "student", preset_name)
    return process.once(key, lambda: _made_for(preset_name, lambda: _diffusion("student", preset_name)))


def _teacher(preset_name: str):
    key = ("model", "teacher", preset_name)
    return process.once(key, lambda: _made_for(preset_name, lambda: _diffusion("teacher", preset_name)))


def _admitted(key: tuple, preset_name: str, label: str, load):
    """A model of its own (an estimator, a safety filter) within the memory budget, counted from its modules."""
    res = residency.current(_device())

    def make():
        with res.using(preset_name):
            return res.admit(key, label, load, residency.module_bytes)

    thing = process.once(key, make, close=lambda _thing: residency.forget(key))
    res.touch(key)
    return thing


def _estimator(preset_name: str):
    def load():
        from adq.method.models.estimators import NullEstimator, load_estimator

        spec = get_preset(preset_name).estimator
        return NullEstimator() if spec.kind == "null" else load_estimator(spec, _device())

    key = ("model", "estimator", preset_name)
    if get_preset(preset_name).estimator.kind == "null":
        return process.once(key, load)  # holds no weights: nothing to budget (and no torch to import)
    return _admitted(key, preset_name, f"preset {preset_name!r}'s estimator", load)


def safety(preset_name: str):
    """The preset's safety filter, loaded once; None when it names none (the default)."""
    spec = get_preset(preset_name).safety
    if spec is None or preset_name in _served:
        return None

    def load():
        from adq.method.models import safety as module

        return module.load(spec, _device())

    return _admitted(("model", "safety", preset_name), preset_name, f"preset {preset_name!r}'s safety filter", load)


def clear() -> None:
    """Forget every loaded model and served pipeline object of this process (weights shared by a base too)."""
    process.drop(process.kind("model", "base"))
    _served.clear()

"""No cold first job: the warm-up runs each served preset's models once per size it serves, and ADQ_COMPILE
compiles each base's denoiser at load and refuses sizes the warm-up did not cover."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adq.core.errors import InputError
from adq.method import presets, sizes
from adq.method.models import registry, residency, warmup
from tests.helpers import configured


@pytest.fixture()
def sized():
    """tiny-sd3 serving two sizes."""
    preset = replace(presets.get_preset("tiny-sd3"), name="tiny-sd3-sized", sizes=((32, 32), (48, 32)))
    presets.register(preset)
    registry.clear()
    yield preset
    presets._runtime.pop(preset.name, None)
    registry.clear()


def test_the_warm_up_runs_each_role_once_per_served_size_and_leaves_the_models_loaded(sized):
    calls = []
    student = registry.student(sized.name)
    original = student.generate
    student.generate = lambda *a, **kw: calls.append((kw["width"], kw["height"])) or original(*a, **kw)
    done = warmup.warm("student", [sized.name], registry) + warmup.warm("teacher", [sized.name], registry)
    assert calls == [(32, 32), (48, 32)]
    assert [(d["pool"], d["size"]) for d in done] == [
        ("student", "32x32"),
        ("student", "48x32"),
        ("teacher", "32x32"),
        ("teacher", "48x32"),
    ]
    held = [e for e in residency.current().entries.values() if sized.name in e.users]
    assert {e.key[0] for e in held} == {"base", "model"}  # both bases and the estimator stay resident


def test_a_preset_without_sizes_warms_its_student_size():
    assert warmup.served_sizes(presets.get_preset("tiny")) == [tuple(presets.get_preset("tiny").student_size)]


def test_compiled_a_preset_serves_only_the_sizes_its_workers_warmed():
    tiny = presets.get_preset("tiny")
    w, h = tiny.student_size
    sizes.check_allowed(tiny, w + 8, h)  # not compiled: any size
    with configured(ADQ_COMPILE="true"):
        sizes.check_allowed(tiny, w, h)
        with pytest.raises(InputError, match=rf"serves only {w}x{h} \(ADQ_COMPILE warms only its student size"):
            sizes.check_allowed(tiny, w + 8, h)


def test_compiled_a_base_loads_with_its_denoiser_compiled_in_place():
    registry.clear()
    try:
        with configured(ADQ_COMPILE="true"):
            student = registry.student("tiny-flux")
            assert student.pipe.transformer._compiled_call_impl is not None  # compiled at its first call
        registry.clear()
        assert registry.student("tiny-flux").pipe.transformer._compiled_call_impl is None
    finally:
        registry.clear()

"""Batch curves: cost(b) = a + c·b, the shipped profiles, the null student that spends one, and the day simulator
that prices teacher batching with one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from adq.control.simulate import simulate
from adq.control.sizing import PolicyConfig
from adq.core.errors import InputError
from adq.method.cost import BatchCurve, curve, curves
from adq.method.models import null
from tests.helpers import configured


def test_the_shipped_curves_pass_through_their_published_points():
    turbo, lightning = curve("sd-turbo-512"), curve("sdxl-lightning-1024")
    assert turbo.seconds(1) == pytest.approx(0.100, abs=1e-5) and turbo.seconds(32) == pytest.approx(1.56, abs=1e-4)
    assert lightning.seconds(1) == pytest.approx(0.55, abs=1e-5) and lightning.seconds(8) == pytest.approx(
        3.58, abs=1e-4
    )
    assert turbo.speedup(8) == pytest.approx(1.86, abs=0.005)  # the bound for batch 8 over batch 1
    assert all(c.source for c in curves().values())


def test_bad_curves_are_refused_with_their_names():
    with pytest.raises(InputError, match="no batch curve 'sd-9'; the shipped ones are sd-turbo-512"):
        curve("sd-9")
    with pytest.raises(InputError, match="c > 0"):
        BatchCurve(0.1, 0.0)


def test_the_null_student_spends_its_curve_once_per_batch(monkeypatch):
    spent = []

    class Spend:
        def __init__(self, ms, steps=1):
            spent.append(round(ms, 6))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(null, "_Spend", Spend)
    from adq.method.presets import get_preset

    student = null.NullStudent(get_preset("null"))
    with configured(ADQ_NULL_STUDENT_CURVE="sd-turbo-512"):
        outs = student.generate_batch(["a"] * 8, list(range(8)), steps=1, guidance=0.0, width=8, height=8)
        student.generate("a", steps=1, guidance=0.0, width=8, height=8, seed=0)
    assert len(outs) == 8 and len({o.image.tobytes() for o in outs}) == 8  # each seed its own image
    assert spent == [
        round(1000 * curve("sd-turbo-512").seconds(8), 6),
        round(1000 * curve("sd-turbo-512").seconds(1), 6),
    ]
    spent.clear()
    with configured(ADQ_NULL_STUDENT_MS="20"):  # no curve: a fixed cost an image, as before
        student.generate_batch(["a"] * 3, [0, 1, 2], steps=1, guidance=0.0, width=8, height=8)
    assert spent == [20.0, 20.0, 20.0]


def test_the_simulator_prices_teacher_batching_on_the_same_day():
    cfg = PolicyConfig.load()
    one = simulate(replace(cfg, teacher_batch_max=1), "static", scenario="drift")
    same = simulate(replace(cfg, teacher_batch_max=1), "static", scenario="drift", batched=True)
    assert np.array_equal(one.latencies, same.latencies)  # a batch of at most one is the unbatched day, exactly
    four = simulate(replace(cfg, teacher_batch_max=4), "static", scenario="drift", batched=True)
    assert four.teacher_batch == 4 and four.jobs == one.jobs
    # The overloaded drift day on a fixed pool: batching drains the backlog that one-at-a-time service builds.
    assert np.percentile(four.latencies, 95) < np.percentile(one.latencies, 95)
    assert len(four.latencies) >= len(one.latencies)

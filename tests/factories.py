"""Data factories for tests."""

from __future__ import annotations

from adq.jobs.db import calibrations, jobs
from adq.method import percentiles as cal
from adq.method.params import JobParams, resolve


def params(prompt: str = "a red fox at sunset", **overrides) -> JobParams:
    overrides.setdefault("seed", 7)
    return resolve(prompt, **overrides)


def percentiles(lo: float = -1.0, hi: float = 1.0) -> cal.Percentiles:
    step = (hi - lo) / 100
    return cal.Percentiles({k: lo + step * k for k in range(101)})


def job(**overrides):
    """A queued job row with a recorded calibration (no message sent)."""
    p = params(**overrides)
    cal_id = calibrations.record(p.student_settings(), percentiles(), n_samples=101, source="factory")
    row, _ = jobs.insert_row(jobs.new_row(p, tau=percentiles().tau(p.k), calibration_id=cal_id, owner=None))
    return row

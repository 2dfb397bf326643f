"""Autoscaling policy, the KEDA manifests rendered from it, and the day simulator."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from adq.control import sizing as policy
from adq.control.keda import KEDA_FILE, render
from adq.control.report import report
from adq.control.simulate import simulate
from adq.control.sizing import PolicyConfig, keda_numbers, replicas_for

ROOT = Path(__file__).resolve().parents[2]
CFG = PolicyConfig.load()


def test_erlang_c_matches_known_values():
    assert policy.erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert policy.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert policy.erlang_c(10, 8.0) == pytest.approx(0.409, abs=1e-3)


def test_replicas_meet_the_target_and_no_fewer_would():
    for rate in (0.1, 0.5, 1.0, 2.0, 5.0):
        c = replicas_for(rate, 0.5, 4.0, 30.0)
        lam, mu = rate * 0.5, 0.25
        assert policy.p_wait_exceeds(c, lam, mu, 26.0) <= 0.05
        assert c == 1 or policy.p_wait_exceeds(c - 1, lam, mu, 26.0) > 0.05
    assert replicas_for(0.0, 0.5, 4.0, 30.0) == 0
    assert replicas_for(2.0, 0.5, 4.0, 30.0) <= replicas_for(2.0, 0.9, 4.0, 30.0)  # more teacher work, more GPUs


def test_committed_keda_manifest_is_rendered_from_the_policy():
    assert KEDA_FILE.read_text() == render(CFG), "run `adq autoscale render` after editing data/autoscale.json"


def test_simulator_is_reproducible_and_compares_policies():
    small = PolicyConfig(**(CFG.as_dict() | {"peak_arrival_rate": 0.5, "offpeak_arrival_rate": 0.05}))
    a = simulate(small, "static", seed=3, dt=2.0)
    b = simulate(small, "static", seed=3, dt=2.0)
    assert a.gpu_hours == b.gpu_hours and np.array_equal(a.latencies, b.latencies)
    static = a.row(small.p95_latency_target_s)
    queue = simulate(small, "queue", seed=3, dt=2.0).row(small.p95_latency_target_s)
    assert static["gpu_hours"] == pytest.approx(24 * keda_numbers(small).teacher_max)
    assert queue["gpu_hours"] < static["gpu_hours"]  # scaling saves GPUs ...
    assert queue["p95"] > static["p95"]  # ... and pays in latency (start-up delay, scale-from-zero)
    expected_jobs = 86_400 * 0.5 * (small.offpeak_arrival_rate + 0.5 * (0.5 - 0.05))  # rough: half the day at peak
    assert 0.5 * expected_jobs < static["jobs"] < 2 * expected_jobs
    assert math.isfinite(static["p99"])


def test_simulate_writes_table_and_plot(tmp_path):
    small = PolicyConfig(**(CFG.as_dict() | {"peak_arrival_rate": 0.3, "offpeak_arrival_rate": 0.05}))
    rows = report(
        small,
        seed=1,
        out_dir=tmp_path,
        dt=5.0,
        scenarios=("base",),
        policies=("static", "queue", "schedule+queue"),
        controls=("fixed",),
        json_path=tmp_path / "r.json",
    )
    # Each day once with the teacher one job at a time, then batched (the shipped policy's batch curve).
    assert [(r["scaling"], r["teacher_batch"]) for r in rows] == [
        (p, b) for b in (1, CFG.teacher_batch_max) for p in ("static", "queue", "schedule+queue")
    ]
    assert (tmp_path / "r.png").stat().st_size > 10_000
    text = (tmp_path / "r.md").read_text()
    assert "GPU-hours, batched" in text and text.count("| base |") == 6
    written = json.loads((tmp_path / "r.json").read_text())
    keys = {
        "scenario",
        "scaling",
        "control",
        "gpu_hours",
        "p50",
        "p95",
        "p99",
        "slo_violations",
        "teacher_fraction",
        "mean_quality",
        "teacher_batch",
    }
    assert len(written) == 6 and all(keys <= set(row) for row in written)


def test_control_policies_in_the_simulator_price_quality_and_drift():
    small = PolicyConfig(**(CFG.as_dict() | {"peak_arrival_rate": 0.6, "offpeak_arrival_rate": 0.05}))
    run = {
        (c, s): simulate(small, "schedule+queue", seed=2, dt=2.0, control=c, scenario=s).row(30.0)
        for c in ("fixed", "slo", "fill")
        for s in ("base", "drift")
    }
    fixed, slo, fill = run["fixed", "base"], run["slo", "base"], run["fill", "base"]
    assert fixed["teacher_fraction"] == pytest.approx(0.5, abs=0.02)
    assert slo["teacher_fraction"] <= fixed["teacher_fraction"] <= fill["teacher_fraction"]
    assert slo["slo_violations"] <= fixed["slo_violations"]
    assert fill["mean_quality"] > fixed["mean_quality"]  # more of the teacher where it was idle
    drift = run["fixed", "drift"]  # from noon the raw share doubles: about 3/4 of the day's jobs
    assert drift["teacher_fraction"] > 0.6 and drift["gpu_hours"] > fixed["gpu_hours"]
    assert run["slo", "drift"]["slo_violations"] <= drift["slo_violations"]


def test_slo_control_meets_its_targets_on_the_committed_inputs():
    # Issue 8's target: slo control with schedule+queue scaling at most 0.5 % SLO violations, no more GPU-hours
    # than fixed control, and mean quality within 0.005 of it (same seed, same day).
    fixed = simulate(CFG, "schedule+queue", seed=0, control="fixed").row(CFG.p95_latency_target_s)
    slo = simulate(CFG, "schedule+queue", seed=0, control="slo").row(CFG.p95_latency_target_s)
    assert slo["slo_violations"] <= 0.005 < fixed["slo_violations"]
    assert slo["gpu_hours"] <= fixed["gpu_hours"]
    assert fixed["mean_quality"] - slo["mean_quality"] <= 0.005

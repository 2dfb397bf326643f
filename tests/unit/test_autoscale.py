"""Autoscaling policy, the KEDA manifests rendered from it, and the day simulator."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from adq.control import sizing as policy
from adq.control.keda import KEDA_FILE, render
from adq.control.report import report
from adq.control.simulate import simulate
from adq.control.sizing import PolicyConfig, keda_numbers, replicas_for
from adq.core.config import Settings
from adq.core.constants import QUEUES, STUDENT_QUEUE, TEACHER_QUEUE
from adq.workers.launch import POOLS

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


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "infra" / "k8s")], capture_output=True, text=True, check=True
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_kustomize_renders_every_role(rendered):
    deployments = by_kind(rendered, "Deployment")
    assert set(deployments) == {
        "adq-api",
        "adq-student",
        "adq-teacher",
        "adq-webhooks",
        "adq-sweeper",
        "adq-flower",
        "adq-controller",
    }
    assert set(by_kind(rendered, "Job")) == {"adq-migrate", "adq-init-storage"}
    assert all(d["metadata"]["namespace"] == "adq" for d in rendered if d["kind"] != "Namespace")


def test_workers_consume_the_queues_the_code_routes_to(rendered):
    from adq.cli import build_parser

    for _name, dep in by_kind(rendered, "Deployment").items():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            assert c["command"][0] == "adq"
            build_parser().parse_args(c["command"][1:])  # a real entrypoint with real flags
    objs = by_kind(rendered, "ScaledObject")
    for so in objs.values():
        target = by_kind(rendered, "Deployment")[so["spec"]["scaleTargetRef"]["name"]]
        pool = target["spec"]["template"]["spec"]["containers"][0]["command"][2]
        queues = [q for q in map(queue_of, so["spec"]["triggers"]) if q]
        assert queues == [POOLS[pool]] and queues[0] in QUEUES
    assert {STUDENT_QUEUE, TEACHER_QUEUE} == {
        q for so in objs.values() for q in map(queue_of, so["spec"]["triggers"])
    } - {None}


def queue_of(trigger: dict) -> str | None:
    """The queue a trigger scales on: the gateway's sum over the queue's priority steps (GET /v1/queues)."""
    meta = trigger["metadata"]
    if trigger["type"] == "metrics-api" and meta["url"].endswith("/v1/queues"):
        return meta["valueLocation"].removeprefix("depths.")
    return None


def test_grace_periods_exceed_hard_limits_and_teacher_has_a_gpu(rendered):
    config = by_kind(rendered, "ConfigMap")["adq-config"]["data"]
    s = Settings(**{k[4:].lower(): v for k, v in config.items()})  # the config map is valid settings
    deps = by_kind(rendered, "Deployment")
    teacher = deps["adq-teacher"]["spec"]["template"]["spec"]
    assert teacher["terminationGracePeriodSeconds"] > s.teacher_time_limit_s
    assert deps["adq-student"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > s.student_time_limit_s
    assert teacher["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert s.visibility_timeout_s > s.teacher_time_limit_s


def test_env_names_are_settings_fields(rendered):
    fields = {f"ADQ_{n.upper()}" for n in Settings.model_fields}
    assert set(by_kind(rendered, "ConfigMap")["adq-config"]["data"]) <= fields
    example = [
        line for f in (ROOT / "infra" / "k8s" / "secrets").glob("*.example.env") for line in f.read_text().splitlines()
    ]
    names = {line.split("=", 1)[0] for line in example if "=" in line and not line.startswith("#")}
    assert {n for n in names if n.startswith("ADQ_")} <= fields
    for dep in by_kind(rendered, "Deployment").values():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            assert {e["name"] for e in c.get("env", []) if e["name"].startswith("ADQ_")} <= fields


def test_keda_numbers_and_peak_schedule(rendered):
    n = keda_numbers(CFG)
    teacher = by_kind(rendered, "ScaledObject")["adq-teacher"]["spec"]
    assert (teacher["minReplicaCount"], teacher["maxReplicaCount"]) == (0, n.teacher_max)
    queue_t, cron, control = teacher["triggers"]
    assert queue_of(queue_t) == TEACHER_QUEUE and int(queue_t["metadata"]["targetValue"]) == n.teacher_list_length
    # The controller's number (issue 8): read from the gateway's /v1/control, one replica per unit.
    assert control["type"] == "metrics-api" and control["metadata"]["valueLocation"] == "desired_teacher_replicas"
    assert control["metadata"]["url"].endswith("/v1/control") and control["metadata"]["targetValue"] == "1"
    assert cron["metadata"] == {
        "timezone": CFG.timezone,
        "start": f"0 {CFG.peak_start_hour} * * 1-5",
        "end": f"0 {CFG.peak_end_hour} * * 1-5",
        "desiredReplicas": str(n.teacher_peak_floor),
    }
    assert n.teacher_peak_floor == policy.teacher_replicas(CFG, CFG.peak_arrival_rate) <= n.teacher_max


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
    assert [r["policy"] for r in rows] == ["static", "queue", "schedule+queue"]
    assert (tmp_path / "r.png").stat().st_size > 10_000
    assert (tmp_path / "r.md").read_text().count("\n") == 5
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
    }
    assert len(written) == 3 and all(keys <= set(row) for row in written)


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

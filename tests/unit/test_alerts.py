"""The Prometheus alert rules in infra/ parse, and query only metrics the gateway exports."""

import re
from pathlib import Path

import yaml

from adq.control.policy import ControlState
from adq.gateway.control import families
from adq.gateway.metrics import MODEL_COUNTERS
from adq.jobs.metrics import HISTOGRAMS

RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "alerts.yaml"


def exported() -> set[str]:
    state = ControlState(
        policy="slo",
        share=40.0,
        requested_k=50.0,
        predicted_p95_s=9.0,
        desired_teacher_replicas=2,
        at=0.0,
        leader="x",
        keys={"tiny:abc": {"n": 9, "k": 50, "live_tau": 0.1, "drift": 0.2}},
    )
    names = {f.name for f in families(state)} | {"adq_queue_depth", "adq_jobs", "adq_teacher_fraction"}
    models = {name for name, _ in MODEL_COUNTERS.values()} | {"adq_model_resident_bytes"}
    return names | set(HISTOGRAMS) | {"adq_jobs_finished"} | models


def test_alert_rules_use_exported_metrics():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {"AdqStudentScoreDrift", "AdqControllerStale"}
    used = {m for r in rules for m in re.findall(r"\badq_[a-z0-9_]+", r["expr"])}
    used = {m.removesuffix("_total") if m.removesuffix("_total") in exported() else m for m in used}  # a counter
    assert used and used <= exported(), used - exported()
    assert all(r.get("for") and r["annotations"]["summary"] for r in rules)

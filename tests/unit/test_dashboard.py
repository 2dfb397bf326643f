"""The Grafana dashboard in infra/ parses, queries only metrics the gateway exports, and shows what operators
need: queue depth, teacher fraction, live tau, effective k, p95 per stage and the error rate."""

import json
import re
from pathlib import Path

from tests.unit.test_alerts import exported

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "adq-dashboard.json"
SUFFIXES = ("_bucket", "_sum", "_count", "_total")


def queries() -> dict[str, list[str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in panels}


def metric(name: str) -> str:
    for suffix in SUFFIXES:  # a histogram's series, a counter's sample
        if name.endswith(suffix) and name[: -len(suffix)] in exported() | {"adq_jobs_finished"}:
            return name[: -len(suffix)]
    return name


def test_every_query_uses_an_exported_metric():
    used = {metric(m) for exprs in queries().values() for e in exprs for m in re.findall(r"\badq_[a-z0-9_]+", e)}
    assert used and used <= exported(), used - exported()


def test_the_dashboard_shows_what_operators_need():
    exprs = " ".join(e for es in queries().values() for e in es)
    for name in ("adq_queue_depth", "adq_teacher_fraction", "adq_live_tau", "adq_effective_k"):
        assert name in exprs, name
    p95 = [e for es in queries().values() for e in es if e.startswith("histogram_quantile(0.95")]
    stages = {m for e in p95 for m in re.findall(r"adq_(queue_wait|student|scoring|teacher)_seconds", e)}
    assert stages == {"queue_wait", "student", "scoring", "teacher"}
    assert any('status="failed"' in e for e in exprs.split(" / ")), "an error-rate panel"
    ids = [p["id"] for p in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(ids) == len(set(ids))

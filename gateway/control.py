"""The controller's published value as the gateway serves it: JSON for KEDA's metrics-api scaler, and gauges for
Prometheus. Read from Redis per request: O(1), whatever the size of the jobs table."""

from __future__ import annotations

import math
import time

from prometheus_client.core import GaugeMetricFamily

from adq.control import published
from adq.control.policy import ControlState
from adq.core.redisconn import redis_client


def current() -> ControlState | None:
    """The fresh published value, or None (no controller, a stale one, no Redis)."""
    try:
        r = redis_client(timeout_s=1.0)
        return published.fresh(published.read(r)) if r is not None else None
    except Exception:
        return None


def families(state: ControlState | None):
    age = GaugeMetricFamily("adq_control_age_seconds", "Seconds since the controller last published (NaN: none)")
    age.add_metric([], time.time() - state.at if state else math.nan)
    yield age
    k = GaugeMetricFamily(
        "adq_effective_k", "Percent of jobs the teacher takes after the controller", labels=["policy"]
    )
    requested = GaugeMetricFamily("adq_requested_k", "Mean k the recent jobs asked for")
    p95 = GaugeMetricFamily("adq_predicted_teacher_p95_seconds", "Predicted p95 of teacher-routed jobs (Erlang C)")
    desired = GaugeMetricFamily("adq_desired_teacher_replicas", "Teacher replicas the controller wants")
    tau = GaugeMetricFamily("adq_live_tau", "Live tau at the preset's k, per calibration key", labels=["key", "k"])
    n = GaugeMetricFamily("adq_live_scores", "Student scores in the live window, per calibration key", labels=["key"])
    drift = GaugeMetricFamily(
        "adq_score_drift", "KS distance between live and calibrated student scores", labels=["key"]
    )
    if state is not None:
        k.add_metric([state.policy], state.share)
        requested.add_metric([], state.requested_k)
        p95.add_metric([], math.inf if state.predicted_p95_s is None else state.predicted_p95_s)
        desired.add_metric([], state.desired_teacher_replicas)
        for key, info in state.keys.items():
            tau.add_metric([key, str(info["k"])], info["live_tau"])
            n.add_metric([key], info["n"])
            if info.get("drift") is not None:
                drift.add_metric([key], info["drift"])
    yield from (k, requested, p95, desired, tau, n, drift)

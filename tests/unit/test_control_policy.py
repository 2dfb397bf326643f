"""The controller's policies, as pure functions: what each one publishes for a given observation."""

import math

import pytest

from adq.control.policy import ControlState, Observation, desired_replicas, effective_k, predicted_p95, share_for, solve
from adq.control.sizing import replicas_for

TARGET = 30.0


def obs(rate=2.0, k=50.0, queue=0, service=4.0, workers=5):
    return Observation(
        arrival_rate=rate, requested_k=k, teacher_queue=queue, teacher_service_s=service, teacher_workers=workers
    )


def test_prediction_agrees_with_the_autoscaling_pool():
    # The pool the KEDA numbers provision meets the target by the same model; one replica fewer does not.
    c = replicas_for(2.0, 0.5, 4.0, TARGET)
    assert predicted_p95(1.0, 4.0, c) <= TARGET < predicted_p95(1.0, 4.0, c - 1)


def test_prediction_grows_with_load_backlog_and_fewer_workers():
    assert predicted_p95(0.5, 4.0, 5) < predicted_p95(1.0, 4.0, 5) < predicted_p95(1.2, 4.0, 5)
    assert predicted_p95(1.0, 4.0, 5, backlog=20) == pytest.approx(predicted_p95(1.0, 4.0, 5) + 20 * 4.0 / 5)
    assert math.isinf(predicted_p95(1.25, 4.0, 5)) and math.isinf(predicted_p95(0.1, 4.0, 0))
    assert predicted_p95(0.0, 4.0, 0) == 4.0  # no load, no wait


def test_fixed_is_the_requested_k():
    assert share_for("fixed", obs(rate=50.0), TARGET) == 50.0


def test_slo_keeps_k_when_the_pool_keeps_up_and_sheds_when_it_cannot():
    assert share_for("slo", obs(rate=1.0), TARGET) == 50.0
    shed = share_for("slo", obs(rate=4.0), TARGET)  # 2 teacher jobs/s against 1.25/s of capacity
    assert 0 < shed < 50
    assert predicted_p95(4.0 * shed / 100, 4.0, 5) <= TARGET < predicted_p95(4.0 * (shed + 1) / 100, 4.0, 5)
    assert share_for("slo", obs(rate=4.0, queue=500), TARGET) == 0.0  # a backlog the target cannot absorb
    # No GPU at all: nothing to protect, and shedding would keep the queue scaler from ever starting one.
    assert share_for("slo", obs(rate=4.0, workers=0), TARGET) == 50.0


def test_fill_raises_the_share_only_into_idle_capacity():
    idle = share_for("fill", obs(rate=0.5), TARGET)
    assert idle > 50 and 0.5 * idle / 100 <= 0.8 * 5 / 4.0
    assert share_for("fill", obs(rate=4.0), TARGET) == 50.0  # busy: the requested k, never lower


def test_effective_k_per_job():
    assert effective_k(50, 50, "fixed", 10.0, 50.0) == 50
    assert effective_k(50, 90, "slo", None, None) == 50  # no (fresh) value: the job's own k
    assert effective_k(50, 90, "slo", 25.0, 50.0) == 25  # the same factor for every job ...
    assert effective_k(80, 90, "slo", 25.0, 50.0) == 40
    assert effective_k(50, 90, "slo", 75.0, 50.0) == 50  # ... and never above the job's k
    assert effective_k(50, 70, "fill", 90.0, 50.0) == 70  # up to k_max
    assert effective_k(50, 70, "fill", 10.0, 50.0) == 50  # never below k


def test_desired_replicas_cover_the_requested_share_and_the_backlog():
    assert desired_replicas(obs(rate=2.0), TARGET) == replicas_for(2.0, 0.5, 4.0, TARGET)
    assert desired_replicas(obs(rate=2.0, queue=100), TARGET) >= math.ceil(100 * 4.0 / (TARGET - 4.0))
    assert desired_replicas(obs(rate=0.0), TARGET) == 0


def test_the_published_state_round_trips():
    state = solve("slo", obs(rate=4.0), TARGET, leader="c1", now=123.0)
    assert ControlState.from_json(state.to_json()) == state
    assert state.share < 50 and state.predicted_p95_s <= TARGET and state.desired_teacher_replicas > 5


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown control policy 'greedy'"):
        share_for("greedy", obs(), TARGET)

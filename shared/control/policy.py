"""The controller's policies, as pure functions over what it observes. The p95 prediction is the Erlang-C model of
adq.control.sizing, so the simulator, the controller and the KEDA numbers agree.

- ``fixed``: k exactly as each job asks (the paper's method).
- ``slo``: never above the job's k; lowered while the predicted p95 of teacher-routed jobs would exceed the
  target (a fixed latency bar; the quality floats down at peak while new GPUs start).
- ``fill``: never below the job's k; raised up to its ``k_max`` while teacher capacity is idle.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from adq.control.sizing import erlang_c, replicas_for

POLICIES = ("fixed", "slo", "fill")
FILL_UTILISATION = 0.8  # fill never plans the teacher pool busier than this


@dataclass(frozen=True)
class Observation:
    arrival_rate: float  # jobs/s submitted (all of them: the student sees every job)
    requested_k: float  # the mean k the recent jobs asked for, percent
    teacher_queue: int  # teacher messages waiting
    teacher_service_s: float  # a recent teacher run, seconds (a moving average)
    teacher_workers: int  # teacher pool processes alive now


def predicted_p95(teacher_rate: float, service_s: float, workers: int, backlog: int = 0) -> float:
    """p95 submit-to-image time of a teacher-routed job: the backlog's drain, the M/M/c wait, one teacher run."""
    if teacher_rate <= 0 and backlog == 0:
        return service_s
    if workers <= 0:
        return math.inf
    mu = 1.0 / service_s
    drain = backlog * service_s / workers
    if teacher_rate <= 0:
        return drain + service_s
    if teacher_rate >= workers * mu:
        return math.inf
    wait_prob = erlang_c(workers, teacher_rate / mu)
    wait95 = 0.0 if wait_prob <= 0.05 else math.log(wait_prob / 0.05) / (workers * mu - teacher_rate)
    return drain + wait95 + service_s


def share_for(policy: str, obs: Observation, target_s: float) -> float:
    """The percent of all jobs the teacher should take now."""
    if policy not in POLICIES:
        raise ValueError(f"unknown control policy {policy!r}; choose one of {', '.join(POLICIES)}")

    def fits(share: float) -> bool:
        return (
            predicted_p95(obs.arrival_rate * share / 100, obs.teacher_service_s, obs.teacher_workers, obs.teacher_queue)
            <= target_s
        )

    if policy == "fixed":
        return obs.requested_k
    if policy == "slo":
        if obs.teacher_workers == 0:
            # No pool to protect: shedding would only keep the queue empty, so the queue scaler would never
            # start a GPU. The jobs wait for one; KEDA (and the desired-replicas trigger) starts it.
            return obs.requested_k
        return next((s for s in _grid(obs.requested_k, 0) if fits(s)), 0.0)
    capacity = FILL_UTILISATION * obs.teacher_workers / obs.teacher_service_s  # teacher jobs/s the pool can take
    idle_ok = [s for s in _grid(100, obs.requested_k) if obs.arrival_rate * s / 100 <= capacity and fits(s)]
    return max(obs.requested_k, idle_ok[0] if idle_ok else obs.requested_k)


def _grid(high: float, low: float) -> list[float]:
    """Shares from high down to low in 1-percent steps, high and low included."""
    steps = [high - i for i in range(int(math.floor(high - low)) + 1)]
    return steps + ([low] if steps[-1] != low else [])


def desired_replicas(obs: Observation, target_s: float, cap: int = 1000) -> int:
    """Teacher replicas that serve the requested k within the target, plus enough to drain the backlog within
    the target: what the KEDA trigger on the controller's number scales to."""
    pool = replicas_for(obs.arrival_rate, obs.requested_k / 100, obs.teacher_service_s, target_s, cap=cap)
    drain = math.ceil(obs.teacher_queue * obs.teacher_service_s / max(target_s - obs.teacher_service_s, 1e-9))
    return min(cap, max(pool, drain))


def effective_k(k: int, k_max: int | None, policy: str, share: float | None, requested_k: float | None) -> int:
    """The share one job's decision uses, from the published share. ``slo`` scales every job's k by the same
    factor (never up); ``fill`` raises it towards the published share, never past its k_max."""
    if policy == "fixed" or share is None:
        return k
    if policy == "slo":
        factor = 1.0 if not requested_k else min(1.0, share / requested_k)
        return min(k, round(k * factor))
    return max(k, min(k if k_max is None else k_max, round(share)))


@dataclass(frozen=True)
class ControlState:
    """What the controller publishes every interval (and the gateway exports as metrics)."""

    policy: str
    share: float  # percent of all jobs the teacher should take
    requested_k: float
    predicted_p95_s: float | None  # at the published share; None when it is infinite
    desired_teacher_replicas: int
    at: float  # Unix time it was computed
    leader: str
    observation: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)  # calibration key -> {"n", "live_tau", "k", "drift"}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ControlState:
        return cls(**json.loads(raw))


def solve(policy: str, obs: Observation, target_s: float, *, leader: str, now: float) -> ControlState:
    share = share_for(policy, obs, target_s)
    p95 = predicted_p95(obs.arrival_rate * share / 100, obs.teacher_service_s, obs.teacher_workers, obs.teacher_queue)
    return ControlState(
        policy=policy,
        share=share,
        requested_k=obs.requested_k,
        predicted_p95_s=None if math.isinf(p95) else p95,
        desired_teacher_replicas=desired_replicas(obs, target_s),
        at=now,
        leader=leader,
        observation=asdict(obs),
    )

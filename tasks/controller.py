"""`adq controller`: re-solve the teacher's share every ADQ_CONTROL_INTERVAL_S and publish it, with the teacher
replicas it wants, for the workers, the metrics and KEDA.

Leader-elected with a Redis lock whose lease is three rounds long: two replicas are safe, one publishes, and
the other takes over within a lease when the leader dies. It observes the arrival rate and the mean requested k
(database), the teacher queue (broker), the teacher service time (a moving average over recent jobs) and the live
teacher pool processes (Celery's inspect), and solves with adq.control.policy."""

from __future__ import annotations

import logging
import math
import time

from redis.exceptions import LockError

from adq.control import published
from adq.control.fairshare import capped_mean
from adq.control.live import ks_statistic, window_distributions
from adq.control.policy import ControlState, Observation, solve
from adq.core.config import get_settings
from adq.core.redisconn import redis_client
from adq.jobs.db import calibrations, queries
from adq.jobs.holders import holder_id
from adq.jobs.stage import TEACHER
from adq.method.presets import get_preset
from adq.tasks.app import app
from adq.tasks.broker import queue_depths

log = logging.getLogger(__name__)
ARRIVAL_WINDOW_S = 10.0  # short enough to see a load step within a few intervals
SERVICE_SAMPLES = 50  # the teacher time is the mean of the newest 50 teacher jobs (of the last 10 minutes)
SERVICE_WINDOW_S = 600.0
INSPECT_TIMEOUT_S = 0.5  # Celery's inspect waits this long for replies; a step makes two such broadcasts


def lease_s(interval_s: float) -> float:
    """The leader lock's lease: three rounds (interval plus the step's own inspect waits), so one slow step does
    not hand leadership over, and a dead leader is replaced within it."""
    return 3 * (interval_s + 2 * INSPECT_TIMEOUT_S) + 1.0


def _model_slots(stats: dict) -> int:
    """Models a node runs at once: one per prefork child (serial design); one per node for the threads pool, whose
    task threads share the process's one model lane (the overlapped design)."""
    pool = stats.get("pool", {})
    if "processes" not in pool:
        return 1
    return int(pool.get("max-concurrency", 1))


def teacher_processes(timeout_s: float = INSPECT_TIMEOUT_S) -> int:
    """Model slots (GPUs) of the live nodes that consume the teacher queue, by Celery's broadcast inspect: whatever
    the nodes are called."""
    queues = app.control.inspect(timeout=timeout_s).active_queues() or {}
    nodes = sorted(node for node, qs in queues.items() if any(q.get("name") == TEACHER.queue for q in qs))
    if not nodes:
        return 0
    stats = app.control.inspect(timeout=timeout_s, destination=nodes).stats() or {}
    return sum(_model_slots(stats.get(node, {})) for node in nodes)


def arrivals() -> tuple[int, float | None]:
    """Jobs submitted in the window and the mean k they asked for. Every job is load, but no key's k outweighs
    the others' by more than its capped share."""
    by_owner = queries.recent_arrivals(ARRIVAL_WINDOW_S)
    n = sum(count for count, _ in by_owner.values())
    share = get_settings().live_key_max_share
    return n, capped_mean({owner or "": v for owner, v in by_owner.items()}, share)


def observe() -> Observation:
    s = get_settings()
    n, mean_k = arrivals()
    service = queries.recent_teacher_seconds(SERVICE_WINDOW_S, limit=SERVICE_SAMPLES) or s.teacher_time_s
    return Observation(
        arrival_rate=n / ARRIVAL_WINDOW_S,
        requested_k=mean_k if mean_k is not None else 0.0,
        # every teacher queue, the groups' too: k moves the whole pool's teacher load (adq.jobs.routes)
        teacher_queue=sum(n for q, n in queue_depths().items() if q.split(".", 1)[0] == "teacher"),
        teacher_service_s=service,
        teacher_workers=teacher_processes(),
    )


def key_report() -> dict:
    """Per calibration key: live tau at the preset's k, the number of live scores, drift from the calibration."""
    out = {}
    for key, dist in window_distributions().items():
        preset, digest = key.split(":", 1)
        k = get_preset(preset).k
        row = calibrations.latest(preset, digest)
        prior = calibrations.percentiles(row.id).values if row is not None else None
        drift = ks_statistic(dist, prior) if prior else None
        out[key] = {
            "n": dist.n,
            "k": k,
            "live_tau": float(dist.get_quantile(k / 100)),
            "drift": None if drift is None or math.isnan(drift) else drift,
        }
    return out


def step(leader: str) -> ControlState:
    s = get_settings()
    state = solve(s.control_policy, observe(), s.teacher_p95_target_s, leader=leader, now=time.time())
    return ControlState(**{**state.__dict__, "keys": key_report()})


def run(interval_s: float | None = None, iterations: int | None = None) -> None:
    s = get_settings()
    interval = interval_s or s.control_interval_s
    r = redis_client(timeout_s=2.0)
    if r is None:
        raise RuntimeError("the controller needs Redis: set ADQ_BROKER_URL=redis://... or ADQ_CONTROL_REDIS_URL")
    me = holder_id("controller")
    lock = r.lock(published.LEADER_LOCK, timeout=lease_s(interval), thread_local=False)
    done = 0
    while iterations is None or done < iterations:
        done += 1
        try:
            leader = lock.reacquire() if lock.owned() else lock.acquire(blocking=False)
        except LockError:  # the lease ran out under us: another replica may lead now
            leader = False
        if leader:
            try:
                state = step(me)
                published.publish(r, state)
                log.info(
                    "share %.1f%% (policy %s), p95 %s, desired teacher replicas %d",
                    state.share,
                    state.policy,
                    state.predicted_p95_s,
                    state.desired_teacher_replicas,
                )
            except Exception:  # a database or broker blip: publish nothing; workers fall back to the job's k
                log.exception("control step failed")
        time.sleep(interval)

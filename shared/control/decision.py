"""The student stage's decision under the control plane: which k (the job's, or the controller's effective k) and
which tau (live, or the calibration's), then "score < tau", once, as a Route."""

from __future__ import annotations

import threading
from dataclasses import replace

from adq.control.live import LiveScores
from adq.control.policy import effective_k
from adq.control.published import Published
from adq.core.config import get_settings
from adq.core.status import Route
from adq.jobs.db import calibrations, frontiers
from adq.method import cascade
from adq.method.frontier import Point, best_for_work
from adq.method.params import JobParams


def live_key(params: JobParams) -> str:
    """Scores are comparable only under the same student settings: the calibration's key."""
    return f"{params.preset}:{params.student_hash()}"


class Decider:
    """One per worker process: its share of the live distribution and its cached view of the controller."""

    def __init__(self, holder: str):
        self.live = LiveScores(holder)
        self.published = Published()
        self._lock = threading.Lock()  # task threads of one process share it (the overlapped design)

    def decide(
        self, params: JobParams, calibration_id: int | None, score: float, owner: str | None = None
    ) -> cascade.Decision:
        with self._lock:
            return self._decide(params, calibration_id, score, owner)

    def _decide(self, params: JobParams, calibration_id: int | None, score: float, owner: str | None):
        s = get_settings()
        # 1. The share: the controller's effective k, or the job's own when there is no fresh value
        state = self.published.current()
        policy = state.policy if state is not None else "fixed"
        k = effective_k(
            params.k, params.k_max, policy, state.share if state else None, state.requested_k if state else None
        )
        # 1b. Along the tuned frontier: the best setting whose teacher work fits what that share affords
        point = along_frontier(params, k) if policy != "fixed" else None
        if point is not None:
            k = point.setting.k
        # 2. Tau: the live distribution's k-th percentile once it is large enough (the owner's own scores, or the
        #    pooled window with each key's weight capped); the calibration before
        key = live_key(params)
        self.live.record(key, score, owner=owner)
        tau, source, n = None, "calibration", 0
        if s.tau_mode == "live" and 0 < k < 100:
            dist = self.live.distribution(key, owner=owner)
            n = dist.n
            if n >= s.live_tau_min_scores:
                tau, source = float(dist.get_quantile(k / 100)), "live"
        if source == "calibration" and calibration_id is not None:
            tau = calibrations.percentiles(calibration_id).tau(k)
        # 3. Route
        decision = cascade.decide(score, tau, k)
        reason = _reason(decision, params.k, policy, source, n)
        if point is not None:
            s = point.setting
            reason = f"frontier {s.label}; " + reason
            point = {"k": s.k, "strategy": s.strategy, "sigma": s.sigma, "teacher_steps": s.teacher_steps}
        return replace(decision, tau_source=source, control_policy=policy, reason=reason[:255], point=point)


def along_frontier(params: JobParams, k: int) -> Point | None:
    """The preset's recorded frontier point (`adq tune --record`) with the job's student steps that is best within
    the teacher work ``k`` affords at the job's own teacher steps; None when no frontier is recorded."""
    points = frontiers.latest(params.preset)
    if not points:
        return None
    return best_for_work(points, params.student_steps, k / 100 * params.teacher_steps)


def _reason(d: cascade.Decision, asked_k: int, policy: str, source: str, n: int) -> str:
    shift = f"{policy} set k {asked_k}->{d.k}; " if d.k != asked_k else ""
    if d.k <= 0 or d.k >= 100:
        return shift + (f"k={d.k}: " + ("every image goes to the teacher" if d.k >= 100 else "the student's is final"))
    where = f"live p{d.k} of {n} scores" if source == "live" else f"calibration p{d.k}"
    op = "<" if d.route is Route.TEACHER else ">="
    return f"{shift}score {d.score:.4g} {op} tau {d.tau:.4g} ({where})"[:255]

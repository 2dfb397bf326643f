"""`adq simulate`: one day of diurnal load with bursts, replayed against each teacher scaling policy and each
control policy, in a base and a drift scenario.

Scaling (the teacher pool):
- static: the pool for the peak with bursts (the KEDA maximum), all day;
- queue: KEDA-like, the pool follows the teacher list length every polling interval; new GPUs become useful after
  a start-up delay; scale-up is immediate and scale-down goes to the largest recommendation of the last cooldown
  (the HPA's stabilisation window);
- schedule+queue: the queue policy with the peak-hour floor of the cron trigger;
- schedule+queue+controller: also the controller's desired replicas (the metrics-api trigger).

Control (the teacher's share, re-solved every CONTROL_INTERVAL_S by adq.control.policy, as `adq controller`
does): fixed, slo or fill; and, given a tuned frontier (`adq simulate --frontier`), slo+frontier: the slo share's
teacher work moves jobs along the frontier (adq.method.frontier.best_for_work), so a teacher job takes that
point's steps (its service time scales with them) and a job's quality is that point's. Scenario drift: from noon
the raw teacher share doubles (traffic that scores lower than the calibration, decided with calibration tau).

Latency counts from submit to final image for the jobs routed to the teacher (the others never wait for a GPU).
GPU-hours count every replica from the moment it is requested, start-up included. Quality per job is the judge
accuracy of adaptive regeneration at the job's effective k (the shapes benchmark's curve, data/results/)."""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adq.control.policy import Observation, desired_replicas, effective_k, share_for
from adq.control.sizing import PolicyConfig, keda_numbers
from adq.core.resources import data_path
from adq.method.cost import BatchCurve
from adq.method.frontier import Point, best_for_work

DAY = 86_400
POLICIES = ("static", "queue", "schedule+queue", "schedule+queue+controller")
CONTROLS = ("fixed", "slo", "fill")
SCENARIOS = ("base", "drift")
CONTROL_INTERVAL_S = 5.0
ARRIVAL_WINDOW_S = 60.0
QUALITY_FILE = ("results", "quality_vs_k.json")  # under the data folder (adq.core.resources)


def quality_curve(path: Path | None = None):
    """Mean quality at a teacher share k (percent), interpolated in the measured curve (the shipped one by default)."""
    table = json.loads((path or data_path(*QUALITY_FILE)).read_text())["quality_by_k"]
    ks = np.array(sorted(int(k) for k in table), dtype=float)
    qs = np.array([table[str(int(k))] for k in ks])
    return lambda k: float(np.interp(k, ks, qs))


class FrontierPricing:
    """A tune's points as the simulator prices them: quality at a share k for the preset's own setting (the other
    controls), and the point the slo+frontier control moves to for a share's teacher work."""

    def __init__(self, points: list[Point], student_steps: int, teacher_steps: int):
        own = sorted(
            (p for p in points if p.setting.strategy == "regenerate" and p.setting.student_steps == student_steps
             and p.setting.teacher_steps == teacher_steps),
            key=lambda p: p.setting.k,
        )  # fmt: skip
        if not own:
            raise ValueError(f"the frontier file has no regenerate points at S={student_steps}, T={teacher_steps}")
        self.ks = np.array([p.setting.k for p in own], float)
        self.qs = np.array([p.quality for p in own])
        self.points, self.S, self.T = points, student_steps, teacher_steps

    def quality(self, k: float) -> float:
        return float(np.interp(k, self.ks, self.qs))

    def along(self, share: float) -> tuple[float, float, float]:
        """(teacher share in percent, service-time scale, quality) of the point the share's work affords."""
        p = best_for_work(self.points, self.S, share / 100 * self.T)
        if p is None:
            return 0.0, 1.0, self.quality(0)
        return float(p.setting.k), p.teacher_steps_per_image / self.T, p.quality


def arrival_rate(cfg: PolicyConfig, t: np.ndarray, bursts: list[tuple[float, float]]) -> np.ndarray:
    """Jobs/s over the day: off-peak base, peak plateau with one-hour cosine ramps, and bursts on top."""
    hour = t / 3600.0
    ramp = 1.0
    up = np.clip((hour - (cfg.peak_start_hour - ramp)) / ramp, 0, 1)
    down = np.clip(((cfg.peak_end_hour + ramp) - hour) / ramp, 0, 1)
    shape = (1 - np.cos(np.pi * np.minimum(up, down))) / 2
    rate = cfg.offpeak_arrival_rate + (cfg.peak_arrival_rate - cfg.offpeak_arrival_rate) * shape
    for start, end in bursts:
        rate = np.where((t >= start) & (t < end), rate * cfg.burst_factor, rate)
    return rate


def in_peak(cfg: PolicyConfig, t: float) -> bool:
    return cfg.peak_start_hour * 3600 <= t < cfg.peak_end_hour * 3600


def raw_share(cfg: PolicyConfig, scenario: str, t: float) -> float:
    """Percent of jobs the decisions would send to the teacher before any control."""
    return min(100.0, cfg.k * (2.0 if scenario == "drift" and t >= DAY / 2 else 1.0))


@dataclass
class Result:
    scaling: str  # the teacher pool's scaling policy (the control policy is `control`)
    gpu_hours: float
    latencies: np.ndarray
    replicas: np.ndarray  # per step
    queue: np.ndarray  # per step
    control: str = "fixed"
    scenario: str = "base"
    jobs: int = 0  # every job submitted (the latencies are the teacher-routed ones)
    quality: float = math.nan  # mean quality per job
    teacher_batch: int = 1  # most jobs a teacher replica ran at once

    def row(self, target: float) -> dict:
        lat = self.latencies
        return {
            "scenario": self.scenario,
            "scaling": self.scaling,
            "control": self.control,
            "policy": self.scaling,
            "gpu_hours": self.gpu_hours,
            "p50": float(np.percentile(lat, 50)),
            "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99)),
            "slo_violations": float(np.mean(lat > target)),
            "teacher_fraction": lat.size / max(1, self.jobs),
            "mean_quality": self.quality,
            "jobs": int(lat.size),
            "teacher_batch": self.teacher_batch,
        }


def simulate(
    cfg: PolicyConfig, policy: str, seed: int = 0, dt: float = 1.0, control: str = "fixed", scenario: str = "base",
    quality=None, frontier: FrontierPricing | None = None, batched: bool = False,
) -> Result:  # fmt: skip
    """One day of one scaling policy and one control. ``batched``: each teacher replica runs up to
    cfg.teacher_batch_max waiting jobs at once, priced by cfg.teacher_batch_curve (scaled so one image costs
    cfg.teacher_time_s)."""
    rng = np.random.default_rng(seed)
    batch = _Batching.of(cfg) if batched else _Batching()
    quality = frontier.quality if frontier is not None else (quality or quality_curve())
    on_frontier = control == "slo+frontier"
    if on_frontier and frontier is None:
        raise ValueError("the slo+frontier control needs a frontier (adq simulate --frontier FILE)")
    steps = int(DAY / dt)
    t = np.arange(steps) * dt
    burst_rng = np.random.default_rng(seed + 1)
    starts = burst_rng.uniform(0, DAY - cfg.burst_minutes * 60, cfg.bursts_per_day)
    bursts = [(s, s + cfg.burst_minutes * 60) for s in sorted(starts)]
    rate = arrival_rate(cfg, t, bursts)
    arrivals = rng.poisson(rate * dt)  # same seed: every policy sees the same day
    route_rng = np.random.default_rng(seed + 2)  # the same routing draws, whatever the scaling
    keda = keda_numbers(cfg)
    static = keda.teacher_max
    teacher_target = cfg.p95_latency_target_s - cfg.student_time_s
    queue: deque[float] = deque()
    busy_until: list[float] = []  # one entry per ready replica
    starting: list[float] = []  # ready-at times of requested replicas
    latencies: list[float] = []
    replicas_log, queue_log = np.zeros(steps), np.zeros(steps)
    gpu_seconds, next_poll, next_control = 0.0, 0.0, 0.0
    history: deque[tuple[float, int]] = deque()  # (time, recommendation) within the stabilisation window
    recent: deque[tuple[float, int]] = deque()  # (time, arrivals) within the controller's arrival window
    desired = static if policy == "static" else 0
    want_control, quality_sum, total = 0, 0.0, 0
    routed_share, service_scale, job_quality = cfg.k, 1.0, quality(cfg.k)
    for i in range(steps):
        now = t[i]
        raw = raw_share(cfg, scenario, now)
        recent.append((now, int(arrivals[i])))
        while recent[0][0] < now - ARRIVAL_WINDOW_S:
            recent.popleft()
        if now >= next_control:  # the controller: observe, solve, publish
            next_control = now + CONTROL_INTERVAL_S
            obs = Observation(
                arrival_rate=sum(n for _, n in recent) / ARRIVAL_WINDOW_S,
                requested_k=raw,
                teacher_queue=len(queue),
                teacher_service_s=cfg.teacher_time_s,
                teacher_workers=len(busy_until),
            )
            routed_share, service_scale, job_quality = _solve(cfg, control, obs, teacher_target, quality, frontier)
            want_control = min(desired_replicas(obs, teacher_target), keda.teacher_max)
        for _ in range(arrivals[i]):
            total += 1
            quality_sum += job_quality
            if route_rng.random() < routed_share / 100:
                queue.append(now + rng.uniform(0, dt) + cfg.student_time_s)
        if now >= next_poll:  # the autoscaler's view: waiting messages (and the controller's number)
            next_poll = now + cfg.polling_interval_s
            if policy != "static":
                want = _autoscaler_wants(cfg, keda, policy, now, len(queue), want_control)
                history.append((now, want))
                while history[0][0] < now - cfg.cooldown_s:
                    history.popleft()
                current = len(busy_until) + len(starting)
                desired = want if want >= current else max(w for _, w in history)
        delay = 0.0 if (policy == "static") else cfg.startup_delay_s
        starting = _scale_to(desired, now, delay, starting, busy_until)
        _serve(cfg, busy_until, queue, now, dt, cfg.teacher_time_s * service_scale, rng, latencies, batch)
        gpu_seconds += (len(busy_until) + len(starting)) * dt
        replicas_log[i], queue_log[i] = len(busy_until) + len(starting), len(queue)
    hours, mean_quality = gpu_seconds / 3600, quality_sum / max(1, total)
    series = (np.array(latencies), replicas_log, queue_log)
    return Result(policy, hours, *series, control, scenario, total, mean_quality, batch.most)


def _autoscaler_wants(cfg: PolicyConfig, keda, policy: str, now: float, queued: int, want_control: int) -> int:
    """What the autoscaler asks for at a poll: waiting messages per replica, the peak floor, the controller's number."""
    want = math.ceil(queued / keda.teacher_list_length) if queued else 0
    if policy.startswith("schedule") and in_peak(cfg, now):
        want = max(want, keda.teacher_peak_floor)
    if policy.endswith("controller"):
        want = max(want, want_control)
    return min(want, keda.teacher_max)


def _scale_to(desired: int, now: float, delay: float, starting: list[float], busy_until: list[float]) -> list[float]:
    """Request or release replicas towards ``desired``; replicas whose start-up is over join ``busy_until`` (in
    place). Returns the replicas still starting."""
    current = len(busy_until) + len(starting)
    if desired > current:
        starting += [now + delay] * (desired - current)
    elif desired < current:
        # Scale down: drop starting replicas first, then idle ones; busy ones finish their job (warm shutdown).
        excess = current - desired
        while excess and starting:
            starting.pop()
            excess -= 1
        idle = [j for j, b in enumerate(busy_until) if b <= now]
        for j in sorted(idle[:excess], reverse=True):
            busy_until.pop(j)
    ready = [s for s in starting if s <= now]
    busy_until += [now] * len(ready)
    return [s for s in starting if s > now]


@dataclass(frozen=True)
class _Batching:
    most: int = 1
    curve: BatchCurve | None = None

    @classmethod
    def of(cls, cfg: PolicyConfig) -> _Batching:
        from adq.method.cost import curve

        return cls(cfg.teacher_batch_max, curve(cfg.teacher_batch_curve)) if cfg.teacher_batch_curve else cls()

    def scale(self, size: int) -> float:
        """A batch of ``size`` against one image."""
        return 1.0 if self.curve is None else self.curve.seconds(size) / self.curve.seconds(1)


def _serve(cfg, busy_until, queue: deque, now: float, dt: float, service_s: float, rng, latencies, batch) -> None:
    """Each ready replica takes queued jobs in arrival order until the step ends, up to ``batch.most`` of those
    already waiting at once (busy_until and queue in place)."""
    for j, free_at in enumerate(busy_until):
        while free_at <= now + dt and queue and queue[0] <= now + dt:
            start = max(free_at, queue[0])
            size = 1
            while size < min(batch.most, len(queue)) and queue[size] <= start:
                size += 1
            free_at = start + service_s * batch.scale(size) * rng.lognormal(-0.02, 0.2)
            for _ in range(size):
                latencies.append(free_at - (queue.popleft() - cfg.student_time_s))
        busy_until[j] = free_at


def _solve(cfg: PolicyConfig, control: str, obs: Observation, teacher_target: float, quality, frontier):
    """The controller's solve: (the share of jobs routed to the teacher, the teacher's cost per job relative to the
    configured one, the mean quality per job)."""
    on_frontier = control == "slo+frontier"
    raw = obs.requested_k
    solved = "slo" if on_frontier else control
    share = effective_k(
        round(raw), cfg.k_max if control == "fill" else None, solved, share_for(solved, obs, teacher_target), raw
    )
    if not on_frontier:
        return share, 1.0, quality(share)
    # The share's teacher work, spent on the best point it affords.
    k, service_scale, job_quality = frontier.along(share * cfg.k / max(raw, 1e-9))
    return min(100.0, k * raw / cfg.k), service_scale, job_quality

"""`adq simulate`: one day of diurnal load with bursts, replayed against three teacher scaling policies.

- static: the pool for the peak with bursts (the KEDA maximum), all day;
- queue: KEDA-like, the pool follows the teacher list length every polling interval; new GPUs become useful after
  a start-up delay; scale-up is immediate and scale-down goes to the largest recommendation of the last cooldown
  (the HPA's stabilisation window);
- schedule+queue: the queue policy with the peak-hour floor of the cron trigger.

Latency counts from submit to final image for the jobs routed to the teacher (the others never wait for a GPU).
GPU-hours count every replica from the moment it is requested, start-up included."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.autoscale.policy import PolicyConfig, keda_numbers

DAY = 86_400
POLICIES = ("static", "queue", "schedule+queue")


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


@dataclass
class Result:
    policy: str
    gpu_hours: float
    latencies: np.ndarray
    replicas: np.ndarray  # per step
    queue: np.ndarray  # per step

    def row(self, target: float) -> dict:
        lat = self.latencies
        return {
            "policy": self.policy,
            "gpu_hours": self.gpu_hours,
            "p50": float(np.percentile(lat, 50)),
            "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99)),
            "slo_violations": float(np.mean(lat > target)),
            "jobs": int(lat.size),
        }


def simulate(cfg: PolicyConfig, policy: str, seed: int = 0, dt: float = 1.0) -> Result:
    rng = np.random.default_rng(seed)
    steps = int(DAY / dt)
    t = np.arange(steps) * dt
    burst_rng = np.random.default_rng(seed + 1)
    starts = burst_rng.uniform(0, DAY - cfg.burst_minutes * 60, cfg.bursts_per_day)
    bursts = [(s, s + cfg.burst_minutes * 60) for s in sorted(starts)]
    rate = arrival_rate(cfg, t, bursts)
    arrivals = rng.poisson(rate * dt)  # same seed: every policy sees the same day
    keda = keda_numbers(cfg)
    static = keda.teacher_max
    queue: deque[float] = deque()
    busy_until: list[float] = []  # one entry per ready replica
    starting: list[float] = []  # ready-at times of requested replicas
    latencies: list[float] = []
    replicas_log, queue_log = np.zeros(steps), np.zeros(steps)
    gpu_seconds, next_poll = 0.0, 0.0
    history: deque[tuple[float, int]] = deque()  # (time, recommendation) within the stabilisation window
    desired = static if policy == "static" else 0
    for i in range(steps):
        now = t[i]
        for _ in range(arrivals[i]):
            if rng.random() < cfg.k / 100:
                queue.append(now + rng.uniform(0, dt) + cfg.student_time_s)
        if now >= next_poll:  # the autoscaler's view: waiting messages only
            next_poll = now + cfg.polling_interval_s
            if policy != "static":
                want = math.ceil(len(queue) / keda.teacher_list_length) if queue else 0
                if policy == "schedule+queue" and in_peak(cfg, now):
                    want = max(want, keda.teacher_peak_floor)
                want = min(want, keda.teacher_max)
                history.append((now, want))
                while history[0][0] < now - cfg.cooldown_s:
                    history.popleft()
                current = len(busy_until) + len(starting)
                desired = want if want >= current else max(w for _, w in history)
        current = len(busy_until) + len(starting)
        if desired > current:
            delay = 0.0 if (policy == "static") else cfg.startup_delay_s
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
        starting = [s for s in starting if s > now]
        busy_until += [now] * len(ready)
        for j, free_at in enumerate(busy_until):
            while free_at <= now + dt and queue and queue[0] <= now + dt:
                start = max(free_at, queue[0])
                service = cfg.teacher_time_s * rng.lognormal(-0.02, 0.2)
                free_at = start + service
                latencies.append(free_at - (queue.popleft() - cfg.student_time_s))
            busy_until[j] = free_at
        gpu_seconds += (len(busy_until) + len(starting)) * dt
        replicas_log[i], queue_log[i] = len(busy_until) + len(starting), len(queue)
    return Result(policy, gpu_seconds / 3600, np.array(latencies), replicas_log, queue_log)


def table(rows: list[dict], target: float) -> str:
    lines = [
        f"| policy | GPU-hours | p50 s | p95 s | p99 s | SLO violations (> {target:g} s) | teacher jobs |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['policy']} | {r['gpu_hours']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
        f"{100 * r['slo_violations']:.2f} % | {r['jobs']} |"
        for r in rows
    ]
    return "\n".join(lines)


def plot(cfg: PolicyConfig, results: list[Result], path: Path, dt: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = np.arange(results[0].replicas.size) * dt / 3600
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for r in results:
        ax1.plot(hours, r.replicas, label=f"{r.policy} ({r.gpu_hours:.0f} GPU-h)", lw=1)
        ax2.plot(hours, r.queue, label=r.policy, lw=0.8)
    ax1.set_ylabel("teacher GPUs")
    ax1.legend(loc="upper left")
    ax1.set_title(
        f"Teacher autoscaling over a day: peak {cfg.peak_start_hour}-{cfg.peak_end_hour} h, "
        f"k={cfg.k}, {cfg.teacher_time_s:g} s/image, p95 target {cfg.p95_latency_target_s:g} s"
    )
    ax2.set_ylabel("waiting teacher jobs")
    ax2.set_xlabel("hour of day")
    ax2.set_yscale("symlog")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(cfg: PolicyConfig, seed: int = 0, out_dir: Path = Path(".adq/simulate"), dt: float = 1.0) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [simulate(cfg, p, seed=seed, dt=dt) for p in POLICIES]
    rows = [r.row(cfg.p95_latency_target_s) for r in results]
    text = table(rows, cfg.p95_latency_target_s)
    print(text)
    (out_dir / "simulation.md").write_text(text + "\n")
    plot(cfg, results, out_dir / "simulation.png", dt)
    print(f"\nplot: {out_dir / 'simulation.png'}")
    return rows

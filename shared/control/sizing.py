"""How many teacher GPUs a load needs, from the arrival rate, the teacher fraction k, the per-image teacher time
and a p95 latency target. The KEDA manifest's numbers are rendered from these functions (`adq autoscale render`)
and the simulator replays a day against them, so the three never disagree.

Model: M/M/c. Teacher jobs arrive at lambda = rate * k/100 and each GPU serves 1/teacher_time per second. With
Erlang C, P(wait > t) = C(c, a) * exp(-(c*mu - lambda) * t); the pool is the smallest c whose p95 wait fits in the
target less one teacher run."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from adq.core.errors import InputError
from adq.core.resources import data_path

DEFAULT_FILE = "autoscale.json"  # the shipped policy, under the data folder (adq.core.resources)


@dataclass(frozen=True)
class PolicyConfig:
    timezone: str
    peak_start_hour: int
    peak_end_hour: int
    peak_days: str  # cron day-of-week field, e.g. "1-5"
    peak_arrival_rate: float  # jobs/s submitted at peak
    offpeak_arrival_rate: float
    burst_factor: float  # bursts multiply the current rate by this
    bursts_per_day: int
    burst_minutes: int
    k: int
    student_time_s: float
    teacher_time_s: float
    p95_latency_target_s: float
    polling_interval_s: int
    cooldown_s: int
    startup_delay_s: int
    max_teacher_replicas: int
    max_student_replicas: int
    k_max: int | None = None  # the fill policy's ceiling (default: k)
    teacher_batch_curve: str | None = None  # a shipped batch curve (data/batch_curves.json) for the teacher's GPU
    teacher_batch_max: int = 1  # most waiting jobs one teacher replica runs at once when batching

    def __post_init__(self):
        if not 0 <= self.peak_start_hour < self.peak_end_hour <= 24:
            raise InputError("peak hours must satisfy 0 <= peak_start_hour < peak_end_hour <= 24")
        if self.p95_latency_target_s <= self.teacher_time_s + self.student_time_s:
            raise InputError("p95_latency_target_s must exceed one student plus one teacher run")
        if not 0 <= self.k <= 100:
            raise InputError(f"k={self.k} is out of range [0, 100]")

    @classmethod
    def load(cls, path: str | Path | None = None) -> PolicyConfig:
        path = path or data_path(DEFAULT_FILE)
        try:
            return cls(**json.loads(Path(path).read_text()))
        except TypeError as exc:
            raise InputError(f"{path}: {exc}") from None

    def as_dict(self) -> dict:
        return asdict(self)


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival waits, for c servers and offered load a = lambda/mu (requires a < c)."""
    term, total = 1.0, 1.0
    for n in range(1, c):
        term *= offered / n
        total += term
    last = term * offered / c * c / (c - offered)
    return last / (total + last)


def p_wait_exceeds(c: int, lam: float, mu: float, t: float) -> float:
    if lam <= 0:
        return 0.0
    if c * mu <= lam:
        return 1.0
    return erlang_c(c, lam / mu) * math.exp(-(c * mu - lam) * t)


def replicas_for(
    rate: float, fraction: float, service_s: float, target_s: float, cap: int = 1000, quantile: float = 0.95
) -> int:
    """Smallest pool whose `quantile` latency (wait + one service) meets target_s; 0 for no load."""
    lam, mu = rate * fraction, 1.0 / service_s
    if lam <= 0:
        return 0
    budget = target_s - service_s
    for c in range(max(1, math.ceil(lam / mu)), cap + 1):
        if p_wait_exceeds(c, lam, mu, budget) <= 1 - quantile:
            return c
    return cap


def teacher_replicas(cfg: PolicyConfig, rate: float) -> int:
    return min(
        cfg.max_teacher_replicas,
        replicas_for(rate, cfg.k / 100, cfg.teacher_time_s, cfg.p95_latency_target_s - cfg.student_time_s),
    )


def list_length_target(service_s: float, target_s: float) -> int:
    """Waiting messages per replica that one replica clears within the latency budget (KEDA's listLength)."""
    return max(1, math.floor((target_s - service_s) / service_s))


@dataclass(frozen=True)
class KedaNumbers:
    teacher_list_length: int
    teacher_peak_floor: int
    teacher_max: int
    student_list_length: int
    student_max: int
    cron_start: str
    cron_end: str


def keda_numbers(cfg: PolicyConfig) -> KedaNumbers:
    return KedaNumbers(
        teacher_list_length=list_length_target(cfg.teacher_time_s, cfg.p95_latency_target_s - cfg.student_time_s),
        teacher_peak_floor=teacher_replicas(cfg, cfg.peak_arrival_rate),
        teacher_max=teacher_replicas(cfg, cfg.peak_arrival_rate * cfg.burst_factor),
        student_list_length=list_length_target(cfg.student_time_s, cfg.p95_latency_target_s / 4),
        student_max=cfg.max_student_replicas,
        cron_start=f"0 {cfg.peak_start_hour} * * {cfg.peak_days}",
        cron_end=f"0 {cfg.peak_end_hour % 24} * * {cfg.peak_days}",
    )

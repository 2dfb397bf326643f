"""Work counted where it happens: the workers add each recorded stage to histograms and counters kept in Redis,
and a gateway scrape reads them back in one round trip, whatever the size of the jobs table.

Each observation is added after the commit that recorded it, in one pipelined round trip. Metrics are best
effort: a Redis that does not answer costs the observation (logged), never the job, and a worker killed between
its commit and this write loses that one observation. With no Redis (the embedded defaults) nothing is written,
and the gateway falls back to aggregate queries over the jobs table, which is small there.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from adq.core.status import TERMINAL, JobStatus

log = logging.getLogger(__name__)

PREFIX = "adq:metrics"
SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
SCORES = (-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3)


@dataclass(frozen=True)
class Histogram:
    name: str
    doc: str
    buckets: tuple[float, ...]
    label: str | None = None  # one label at most, enough for ours


HISTOGRAMS = {
    h.name: h
    for h in (
        Histogram(
            "adq_queue_wait_seconds", "Seconds from submit (or teacher hand-off) to a worker's claim", SECONDS, "stage"
        ),
        Histogram("adq_student_seconds", "Student generation time per job", SECONDS),
        Histogram("adq_scoring_seconds", "Quality-estimator time per job", SECONDS),
        Histogram("adq_teacher_seconds", "Teacher refine/regenerate time per job", SECONDS),
        Histogram("adq_estimator_score", "Quality-estimator score of student images", SCORES),
    )
}
FINISHED = "adq_jobs_finished_total"


def client():
    """The process's client for the configured Redis (its connection pool is thread-safe), made after any fork."""
    from adq.core import process
    from adq.core.config import get_settings
    from adq.core.redisconn import redis_client

    url = get_settings().effective_control_redis_url
    return process.once(("redis", "metrics", url), lambda: redis_client(timeout_s=0.5))


def _key(name: str, label: str | None) -> str:
    return f"{PREFIX}:{name}" + (f":{label}" if label else "")


def observe(samples: Iterable[tuple[str, str | None, float | None]], finished: JobStatus | None = None) -> None:
    """Add (histogram, label, value) samples, and count a job that reached a terminal status."""
    try:
        r = client()
        if r is None:
            return
        pipe = r.pipeline(transaction=False)
        for name, label, value in samples:
            if value is None:
                continue
            h = HISTOGRAMS[name]
            key = _key(name, label)
            pipe.hincrby(key, f"b{bisect_left(h.buckets, value)}", 1)  # the first bucket with le >= value
            pipe.hincrbyfloat(key, "sum", float(value))
        if finished is not None and finished in TERMINAL:
            pipe.hincrby(f"{PREFIX}:{FINISHED}", finished.value, 1)
        pipe.execute()
    except Exception as exc:  # metrics never fail a job
        log.warning("metrics not recorded: %s: %s", type(exc).__name__, exc)


def read(r) -> tuple[dict, dict[str, int]]:
    """{(histogram, label): (cumulative bucket counts, count, sum)} and the finished counts, in one round trip."""
    keys = [(h.name, lbl) for h in HISTOGRAMS.values() for lbl in (("student", "teacher") if h.label else (None,))]
    pipe = r.pipeline(transaction=False)
    for name, label in keys:
        pipe.hgetall(_key(name, label))
    pipe.hgetall(f"{PREFIX}:{FINISHED}")
    *raw, finished = pipe.execute()
    out = {}
    for (name, label), fields in zip(keys, raw):
        fields = {k.decode(): v for k, v in fields.items()}
        h = HISTOGRAMS[name]
        per = [int(fields.get(f"b{i}", 0)) for i in range(len(h.buckets) + 1)]
        cumulative, total = [], 0
        for n in per:
            total += n
            cumulative.append(total)
        out[(name, label)] = (cumulative, total, float(fields.get("sum", 0.0)))
    return out, {k.decode(): int(v) for k, v in finished.items()}


def stage_samples(stage: str, row) -> list[tuple[str, str | None, float | None]]:
    """What one recorded stage adds, from the row its record returned."""
    if stage == "student":
        return [
            ("adq_queue_wait_seconds", "student", row.student_wait_s),
            ("adq_student_seconds", None, row.generate_s),
            ("adq_scoring_seconds", None, row.score_s),
            ("adq_estimator_score", None, row.student_score),
        ]
    return [("adq_queue_wait_seconds", "teacher", row.teacher_wait_s), ("adq_teacher_seconds", None, row.teacher_s)]

"""The project's Prometheus metrics, read at scrape time from the broker and the database.

Work happens in worker processes, so in-process counters in the gateway would see none of it. Histograms are
computed with one aggregate query each over the jobs table: cumulative over all jobs, so they only grow, as
Prometheus histograms must."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString
from sqlalchemy import case, func, select

from shared.config import get_settings
from shared.db.bookkeeping import count_by_status
from shared.db.jobs import utcnow
from shared.db.models import Job
from shared.db.session import session_scope
from shared.status import JobStatus
from tasks.broker import queue_depths

SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
SCORES = (-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3)

HISTOGRAMS = [
    (
        "adq_queue_wait_seconds",
        "Seconds from submit (or teacher hand-off) to a worker's claim",
        [("student", Job.student_wait_s), ("teacher", Job.teacher_wait_s)],
        SECONDS,
    ),
    ("adq_student_seconds", "Student generation time per job", [(None, Job.generate_s)], SECONDS),
    ("adq_scoring_seconds", "Quality-estimator time per job", [(None, Job.score_s)], SECONDS),
    ("adq_teacher_seconds", "Teacher refine/regenerate time per job", [(None, Job.teacher_s)], SECONDS),
    ("adq_estimator_score", "Quality-estimator score of student images", [(None, Job.student_score)], SCORES),
]


def _histogram(name, doc, series, buckets):
    family = HistogramMetricFamily(name, doc, labels=["stage"] if series[0][0] else [])
    with session_scope() as s:
        for label, col in series:
            cols = [func.count(col), func.coalesce(func.sum(col), 0.0)]
            cols += [func.sum(case((col <= b, 1), else_=0)) for b in buckets]
            count, total, *below = s.execute(select(*cols)).one()
            pairs = [(floatToGoString(b), int(n or 0)) for b, n in zip(buckets, below)] + [("+Inf", int(count))]
            family.add_metric([label] if label else [], pairs, float(total))
    return family


class Collector:
    def collect(self):
        depth = GaugeMetricFamily("adq_queue_depth", "Messages waiting in each queue", labels=["queue"])
        for queue, n in queue_depths().items():
            depth.add_metric([queue], n)
        yield depth
        by_status = GaugeMetricFamily("adq_jobs", "Jobs by status", labels=["status"])
        counts = count_by_status()
        for status in JobStatus:
            by_status.add_metric([status.value], counts.get(status.value, 0))
        yield by_status
        since = utcnow() - timedelta(seconds=get_settings().metrics_window_s)
        with session_scope() as s:
            frac, n = s.execute(
                select(func.avg(case((Job.teacher_used, 1.0), else_=0.0)), func.count()).where(
                    Job.student_finished_at >= since
                )
            ).one()
        window = GaugeMetricFamily(
            "adq_teacher_fraction",
            f"Fraction of jobs sent to the teacher over the last "
            f"{get_settings().metrics_window_s} s (NaN when none were scored)",
        )
        window.add_metric([], float(frac) if n else float("nan"))
        yield window
        for spec in HISTOGRAMS:
            yield _histogram(*spec)
        from gateway import control

        yield from control.families(control.current())


def render(accept: str | None) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type

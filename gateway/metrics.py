"""The project's Prometheus metrics, read at scrape time, at a cost that does not grow with the jobs table.

Work happens in worker processes, so the workers count it (adq.jobs.metrics, in Redis) and a scrape reads the
counts back in one round trip. From the database a scrape reads only what indexes bound: the jobs not yet
finished (by status) and the jobs scored in the teacher-fraction window. With no Redis (the embedded defaults)
the histograms and finished counts fall back to aggregate queries over the jobs table, which is small there."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString
from sqlalchemy import case, func, select

from adq.core.config import get_settings
from adq.core.status import TERMINAL, JobStatus
from adq.jobs import metrics
from adq.jobs.db.jobs import utcnow
from adq.jobs.db.models import Job
from adq.jobs.db.queries import count_by_status, count_live_by_status, count_terminal_by_status
from adq.jobs.db.session import session_scope
from adq.tasks.broker import queue_depths

COLUMNS = {  # the fallback's source of each series
    ("adq_queue_wait_seconds", "student"): Job.student_wait_s,
    ("adq_queue_wait_seconds", "teacher"): Job.teacher_wait_s,
    ("adq_student_seconds", None): Job.generate_s,
    ("adq_scoring_seconds", None): Job.score_s,
    ("adq_teacher_seconds", None): Job.teacher_s,
    ("adq_estimator_score", None): Job.student_score,
}


def _from_table() -> tuple[dict, dict[str, int]]:
    """The fallback: one aggregate query per series over the whole table."""
    out = {}
    with session_scope() as s:
        for (name, label), col in COLUMNS.items():
            buckets = metrics.HISTOGRAMS[name].buckets
            cols = [func.count(col), func.coalesce(func.sum(col), 0.0)]
            cols += [func.sum(case((col <= b, 1), else_=0)) for b in buckets]
            count, total, *below = s.execute(select(*cols)).one()
            out[(name, label)] = ([int(n or 0) for n in below] + [int(count)], int(count), float(total))
    return out, count_terminal_by_status()


def scan_table() -> None:
    """What a scrape cost before the workers counted: every aggregate over the whole table (`adq bench metrics`)."""
    _from_table()
    count_by_status()


def _counts() -> tuple[dict, dict[str, int]]:
    from adq.core.redisconn import redis_client

    r = redis_client(timeout_s=1.0)
    return metrics.read(r) if r is not None else _from_table()


def _histograms(series: dict):
    for h in metrics.HISTOGRAMS.values():
        family = HistogramMetricFamily(h.name, h.doc, labels=[h.label] if h.label else [])
        for (name, label), (cumulative, _count, total) in series.items():
            if name != h.name:
                continue
            edges = [floatToGoString(b) for b in h.buckets] + ["+Inf"]
            family.add_metric([label] if label else [], list(zip(edges, cumulative)), total)
        yield family


MODEL_COUNTERS = {
    "loads": ("adq_model_loads", "Models loaded by workers, per preset (adq.method.models.residency)"),
    "evictions": ("adq_model_evictions", "Models evicted to stay within ADQ_MODEL_MEMORY_BYTES, per preset"),
    "load_seconds": ("adq_model_load_seconds", "Seconds workers spent loading models, per preset"),
}


def _model_families():
    from adq.core.redisconn import redis_client
    from adq.jobs import model_metrics

    r = redis_client(timeout_s=1.0)
    counts, held = model_metrics.read(r) if r is not None else ({}, {})
    for name, (metric, doc) in MODEL_COUNTERS.items():
        family = CounterMetricFamily(metric, doc, labels=["preset"])
        for (counter, preset), value in sorted(counts.items()):
            if counter == name:
                family.add_metric([preset], value)
        yield family
    gauge = GaugeMetricFamily(
        "adq_model_resident_bytes",
        "Model bytes each worker holds, by the presets that use them",
        labels=["worker", "preset"],
    )
    for (worker, preset), nbytes in sorted(held.items()):
        gauge.add_metric([worker, preset], nbytes)
    yield gauge


class Collector:
    def collect(self):
        depth = GaugeMetricFamily("adq_queue_depth", "Messages waiting in each queue", labels=["queue"])
        for queue, n in queue_depths().items():
            depth.add_metric([queue], n)
        yield depth
        by_status = GaugeMetricFamily("adq_jobs", "Jobs not yet finished, by status", labels=["status"])
        live = count_live_by_status()
        for status in JobStatus:
            if status not in TERMINAL:
                by_status.add_metric([status.value], live.get(status.value, 0))
        yield by_status
        series, finished_counts = _counts()
        finished = CounterMetricFamily(
            metrics.FINISHED[: -len("_total")], "Jobs that finished, by final status", labels=["status"]
        )
        for status in sorted(TERMINAL):
            finished.add_metric([status.value], finished_counts.get(status.value, 0))
        yield finished
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
        yield from _histograms(series)
        yield from _model_families()
        from adq.gateway import control

        yield from control.families(control.current())


def render(accept: str | None) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type

"""A worker that is alive but no longer consuming gets restarted by whoever runs it.

A process can outlive its usefulness: stuck reconnecting to a broker that came back elsewhere, or with a consumer
that stopped and never started again. Its PID is fine, so neither Kubernetes' restartPolicy nor a supervisor sees
anything. This consumer bootstep touches a file every ``ADQ_LIVENESS_INTERVAL_S`` while, and only while, the
consumer is consuming its queues (Celery starts the step after the task consumer and stops it when the broker
connection is lost); `adq alive POOL` answers whether that file is fresh, and the Kubernetes liveness probes run
it. The timer runs on the consumer's event loop, not in a task thread, so a long job does not stop the marks."""

from __future__ import annotations

import time
from pathlib import Path

from celery import bootsteps
from celery.worker.consumer.tasks import Tasks

from adq.core.config import get_settings
from adq.tasks.app import app


def mark_path(pool: str) -> Path:
    return get_settings().home_dir / "alive" / pool


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _tick(path: Path) -> None:
    _touch(path)
    try:  # the overlapped design holds its models in this process: keep their gauge fresh while idle
        from adq.method.models import residency

        residency.refresh()
    except Exception:  # metrics never stop the mark
        pass


class ConsumingMark(bootsteps.StartStopStep):
    requires = (Tasks,)

    def __init__(self, c, **kwargs):
        self.tref = None
        super().__init__(c, **kwargs)

    def start(self, c):
        from adq.tasks.signals import served_pool

        pool = served_pool()
        if pool is None:  # a worker not started by `adq worker` (celery -A adq.tasks worker): nothing probes it
            return
        path = mark_path(pool)
        _touch(path)
        self.tref = c.timer.call_repeatedly(get_settings().liveness_interval_s, _tick, (path,))

    def stop(self, c):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop


def age_s(pool: str) -> float | None:
    """Seconds since the pool's worker last marked itself consuming; None when it never did."""
    try:
        return time.time() - mark_path(pool).stat().st_mtime
    except FileNotFoundError:
        return None


app.steps["consumer"].add(ConsumingMark)

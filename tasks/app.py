"""The Celery app. Reliability settings follow the broker facts in docs/reliability.md.

``configure()`` (re)applies the settings, and drops what Celery built from the earlier ones (its AMQP object and
connection pool); importing this module creates no folders. What depends on the broker is in
adq.tasks.transports."""

from __future__ import annotations

from celery import Celery
from kombu import pools

from adq.core.config import Settings, get_settings
from adq.core.constants import NOOP_TASK, STUDENT_QUEUE, WEBHOOK_QUEUE, WEBHOOK_TASK
from adq.jobs.stage import STAGES
from adq.tasks import redis_transport  # noqa: F401  (registers our Redis transports)
from adq.tasks.fs_transport import transport_url
from adq.tasks.transports import celery_options, transport_options

app = Celery("adq", set_as_current=True)


def ensure_broker_folders(s: Settings | None = None) -> None:
    """The filesystem transport needs its folders before the first message; made by whoever sends or consumes."""
    s = s or get_settings()
    if s.broker_kind == "filesystem":
        for sub in ("queue", "processed", "control"):
            (s.broker_folder / sub).mkdir(parents=True, exist_ok=True)


def celery_config(s: Settings) -> dict:
    routes = {stage.task: {"queue": stage.queue} for stage in STAGES}
    routes |= {WEBHOOK_TASK: {"queue": WEBHOOK_QUEUE}, NOOP_TASK: {"queue": STUDENT_QUEUE}}
    return dict(
        broker_url=transport_url(s.effective_broker_url),
        broker_transport_options=transport_options(s),
        broker_connection_retry_on_startup=True,
        result_backend=None,  # job status lives in the database
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,  # requeue when the pool process dies; crashes are capped in the DB
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        # The shared queues; a group's (adq.jobs.routes) are declared by the workers that consume them and made
        # on first use by whoever sends to them (task_create_missing_queues), so no presets file is read here.
        task_default_queue=STUDENT_QUEUE,
        task_routes=routes,
        task_create_missing_queues=True,
        worker_send_task_events=s.send_events,
        task_send_sent_event=s.send_events,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
    ) | celery_options(s)


def configure(s: Settings | None = None) -> Celery:
    """Apply settings to the app. Producers are acquired per broker URL from kombu's pools, so dropping those
    pools is all a change of broker needs."""
    app.conf.update(celery_config(s or get_settings()))
    pools.reset()
    # Celery's AMQP object caches the queues (declared per broker, adq.tasks.transports) and a producer pool from
    # kombu's, which the reset closed (the next inspect failed: "Acquire on closed pool"): a fresh one reads the
    # new settings. Its connection pool keeps the old broker: drop it too
    app.__dict__.pop("amqp", None)
    old, app._pool = app._pool, None
    if old is not None:
        try:
            old.force_close_all()
        except Exception:  # a dead broker's connections: nothing to close cleanly
            pass
    return app


configure()

"""The Celery app. Reliability settings follow the broker facts in docs/reliability.md.

``configure()`` (re)applies the settings through Celery's and kombu's public APIs; importing this module creates
no folders and touches no private attributes."""

from __future__ import annotations

import socket

from celery import Celery
from kombu import Queue, pools

from adq.core.config import Settings, get_settings
from adq.core.constants import NOOP_TASK, QUEUES, STUDENT_QUEUE, WEBHOOK_QUEUE, WEBHOOK_TASK
from adq.jobs.priority import STEPS
from adq.jobs.stage import STAGES
from adq.tasks import redis_transport  # noqa: F401  (registers the Redis transport whose close cannot kill a worker)
from adq.tasks.fs_transport import transport_url

app = Celery("adq", set_as_current=True)
# TCP keepalive on broker connections: probes after 10 s idle, 5 s apart, 3 misses; 30 s of unacknowledged data.
KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3, socket.TCP_USER_TIMEOUT: 30_000}


def broker_options(s: Settings) -> dict:
    if s.broker_kind == "filesystem":
        folder = s.broker_folder
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "control_folder": str(folder / "control"),
            "polling_interval": 0.1,
        }
    # Redis redelivers an unacked message after visibility_timeout; settings keep it above every hard time limit.
    return {
        # Queue priorities (adq.jobs.priority): one Redis list per step, step 0 served first.
        "priority_steps": list(STEPS),
        "sep": ":",
        "queue_order_strategy": "priority",
        "visibility_timeout": s.visibility_timeout_s,
        "unacked_restore_interval": s.unacked_restore_interval_s,
        "unacked_restore_throttle": 1,
        # A silent network ends in a connection error, which Celery answers by reconnecting: a connect that gets
        # no answer, a read with none (BRPOP itself returns every second), a peer gone quiet (keepalive), and a
        # connection checked before use after 10 s idle.
        "socket_connect_timeout": s.connect_timeout_s,
        "socket_timeout": 30,
        "socket_keepalive": True,
        "socket_keepalive_options": KEEPALIVE,
        "health_check_interval": 10,
    }


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
        broker_transport_options=broker_options(s),
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
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=STUDENT_QUEUE,
        task_routes=routes,
        task_create_missing_queues=True,
        worker_send_task_events=s.send_events,
        task_send_sent_event=s.send_events,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
    )


def configure(s: Settings | None = None) -> Celery:
    """Apply settings to the app. Producers are acquired per broker URL from kombu's pools, so dropping those
    pools is all a change of broker needs."""
    app.conf.update(celery_config(s or get_settings()))
    pools.reset()
    # Celery caches a producer pool from kombu's (broadcasts, inspect use it): the reset closed it, so forget it,
    # else the next inspect fails with "Acquire on closed pool". Its connection pool keeps the old broker: drop it too
    app.amqp._producer_pool = None
    old, app._pool = app._pool, None
    if old is not None:
        try:
            old.force_close_all()
        except Exception:  # a dead broker's connections: nothing to close cleanly
            pass
    return app


configure()

"""The Celery app. Reliability settings follow the broker facts in the README's "Reliability" section."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from shared.config import settings
from shared.constants import (NOOP_TASK, QUEUES, STUDENT_QUEUE, STUDENT_TASK, TEACHER_QUEUE, TEACHER_TASK,
                              WEBHOOK_QUEUE, WEBHOOK_TASK)

app = Celery("adq", set_as_current=True)


def broker_options() -> dict:
    if settings.broker_kind == "filesystem":
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
                "processed_folder": str(folder / "processed"), "store_processed": False,
                "control_folder": str(folder / "control"), "polling_interval": 0.1}
    # Redis redelivers an unacked message after visibility_timeout; settings keep it above every hard time limit.
    return {"visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": settings.unacked_restore_interval_s, "unacked_restore_throttle": 1}


def apply_settings() -> None:
    """(Re)configure the app from settings. Pools made for an earlier broker URL are dropped, not reused."""
    from kombu import pools

    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()  # kombu's process-wide producer pools are keyed by connection; drop them too
    app.conf.update(
        broker_url=settings.effective_broker_url,
        broker_transport_options=broker_options(),
        broker_connection_retry_on_startup=True,
        result_backend=None,  # job status lives in the database
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,  # requeue when the pool process dies; attempts are capped in the DB
        worker_prefetch_multiplier=1,
        task_serializer="json", accept_content=["json"],
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=STUDENT_QUEUE,
        task_routes={STUDENT_TASK: {"queue": STUDENT_QUEUE}, TEACHER_TASK: {"queue": TEACHER_QUEUE},
                     WEBHOOK_TASK: {"queue": WEBHOOK_QUEUE}, NOOP_TASK: {"queue": STUDENT_QUEUE}},
        task_create_missing_queues=True,
        worker_send_task_events=settings.send_events,
        task_send_sent_event=settings.send_events,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
    )


apply_settings()

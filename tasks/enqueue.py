"""The enqueueing half of the client: record a job (``shared.client.record``), then send its message; send the
next stage; queue webhooks; an operator's retry. Messages carry the job id only, never image bytes."""

from __future__ import annotations

import logging
from typing import Any

from kombu import pools

from shared import client
from shared.constants import WEBHOOK_QUEUE, WEBHOOK_TASK
from shared.db import bookkeeping
from shared.db.models import Job
from shared.schema import JobView
from shared.stage import STUDENT, Stage
from tasks.app import app, ensure_broker_folders

log = logging.getLogger(__name__)


def _send(name: str, queue: str, task_id: str, args: list) -> None:
    ensure_broker_folders()
    # One producer pool per broker URL (kombu's own pools), so a change of settings needs no reset of the app.
    with pools.producers[app.connection_for_write()].acquire(block=True) as producer:
        app.send_task(name, args=args, task_id=task_id, queue=queue, producer=producer)


def send_stage(stage: Stage, job_id: str) -> None:
    _send(stage.task, stage.queue, stage.task_id(job_id), [job_id])


def _send_or_leave_to_sweeper(stage: Stage, job: Job) -> Job:
    try:
        send_stage(stage, job.id)
        return bookkeeping.mark_enqueued(job.id) or job
    except Exception as exc:  # broker down: the row is safe, and the sweeper sends it later
        log.warning("job %s recorded but not enqueued (%s); the sweeper will send it", job.id, exc)
        return job


def submit(
    prompt: Any,
    *,
    idempotency_key: str | None = None,
    webhook_url: str | None = None,
    owner: str | None = None,
    **params: Any,
) -> JobView:
    """Check, record and enqueue a job. The message is sent after the row commits."""
    job, created = client.record(
        prompt, idempotency_key=idempotency_key, webhook_url=webhook_url, owner=owner, **params
    )
    if created:
        job = _send_or_leave_to_sweeper(STUDENT, job)
    return JobView.of(job, created=created)


def retry(job_id: str) -> JobView:
    """Restart a failed job at the stage that failed, with fresh budgets (its earlier error stays in history)."""
    job, stage = bookkeeping.retry(job_id)
    return JobView.of(_send_or_leave_to_sweeper(stage, job))


def event_id(job: Job) -> str:
    """One id per terminal event: the job, its final status and its operator-retry round."""
    return f"{job.id}:{job.status.value}:{job.retries or 0}"


def notify(job: Job | None) -> None:
    """Queue the webhook of a finished job, if it asked for one."""
    if job is not None and job.webhook_url:
        eid = event_id(job)
        _send(WEBHOOK_TASK, WEBHOOK_QUEUE, f"{eid}:webhook", [job.id, eid])

"""The enqueueing half of the client: record a job (``adq.jobs.records.record``), then send its message; send the
next stage; queue webhooks; an operator's retry. Messages carry the job id only, never image bytes."""

from __future__ import annotations

import logging
from typing import Any

from kombu import pools

from adq.core.config import get_settings
from adq.core.constants import WEBHOOK_QUEUE, WEBHOOK_TASK
from adq.jobs import batches, groups, records, routes
from adq.jobs.db import jobs, operator, outbox
from adq.jobs.db.models import Batch, Job
from adq.jobs.schema import JobView
from adq.jobs.stage import STUDENT, Stage
from adq.tasks import transports
from adq.tasks.app import app, ensure_broker_folders

log = logging.getLogger(__name__)


def _send(name: str, queue: str, task_id: str, args: list, priority: int = 0) -> None:
    """``priority``: the job's step (adq.jobs.priority), sent as this broker numbers it."""
    ensure_broker_folders()
    # One producer pool per broker URL (kombu's own pools), so a change of settings needs no reset of the app.
    with pools.producers[app.connection_for_write()].acquire(block=True) as producer:
        priority = transports.message_priority(priority, get_settings())
        app.send_task(name, args=args, task_id=task_id, queue=queue, producer=producer, priority=priority)


def send_stage(stage: Stage, job_id: str, queue_priority: int, preset: str) -> None:
    """Send a stage's message at the job's queue priority (adq.jobs.priority), to its preset's queue
    (adq.jobs.routes)."""
    _send(stage.task, routes.queue(stage.queue, preset), stage.task_id(job_id), [job_id], priority=queue_priority)


def _check_served(presets) -> None:
    from adq.tasks.broker import live_consumers

    # A cached "no worker" is asked again after a second: a group's worker that just started is not refused
    routes.check_served(presets, lambda queue: live_consumers(queue, recheck_s=1.0))


def _send_or_leave_to_sweeper(stage: Stage, job: Job) -> Job:
    try:
        send_stage(stage, job.id, job.queue_priority, job.preset)
        return outbox.mark_enqueued(job.id) or job
    except Exception as exc:  # broker down: the row is safe, and the sweeper sends it later
        log.warning("job %s recorded but not enqueued (%s); the sweeper will send it", job.id, exc)
        return job


def submit(prompt: Any, *, idempotency_key: str | None = None, owner: str | None = None, **params: Any) -> JobView:
    """Check, record and enqueue a job. The message is sent after the row commits. ``params``: the job's
    parameters plus priority, webhook_url and webhook_events, and ``num_outputs``: several images make a group
    (adq.jobs.groups), and the answer is its first job's view."""
    if (params.get("num_outputs") or 1) > 1:
        _, items, shared = groups.split(params)
        _, views = submit_batch(items, shared | {"prompt": prompt}, owner=owner, idempotency_key=idempotency_key)
        return views[0]
    params.pop("num_outputs", None)
    from adq.method.presets import get_preset  # the default preset, when the job names none

    _check_served([params.get("preset") or get_preset(get_settings().preset).name])
    job, created = records.record(prompt, idempotency_key=idempotency_key, owner=owner, **params)
    if created:
        job = _send_or_leave_to_sweeper(STUDENT, job)
    return JobView.of(job, created=created)


def submit_batch(
    items: list[dict], shared: dict, *, owner: str | None = None, idempotency_key: str | None = None
) -> tuple[Batch, list[JobView]]:
    """Check every item, record the batch in one transaction, then send one message per job."""
    default = get_settings().preset
    _check_served([item.get("preset") or shared.get("preset") or default for item in items])
    batch, rows, created = batches.create(items, shared, owner=owner, idempotency_key=idempotency_key)
    if created:
        rows = [_send_or_leave_to_sweeper(STUDENT, row) for row in rows]
    return batch, [JobView.of(row, created=created) for row in rows]


def cancel(job_id: str) -> JobView:
    """Cancel an unfinished job: a stage running it stops after its current denoising step (adq.method.cancel)."""
    view = records.cancel(job_id)
    notify(jobs.get(job_id))
    return view


def cancel_batch(batch_id: str) -> list[JobView]:
    cancelled = batches.cancel(batch_id)
    for row in cancelled:
        notify(row)
    return [JobView.of(row) for row in cancelled]


def retry(job_id: str) -> JobView:
    """Restart a failed job at the stage that failed, with fresh budgets (its earlier error stays in history)."""
    job, stage = operator.retry(job_id)
    return JobView.of(_send_or_leave_to_sweeper(stage, job))


def event_id(job: Job) -> str:
    """One id per terminal event: the job, its final status and its operator-retry round."""
    return f"{job.id}:{job.status.value}:{job.retries or 0}"


def webhook_task_id(job: Job) -> str:
    return f"{event_id(job)}:webhook"


def notify(job: Job | None) -> None:
    """Queue the webhook of a finished job, if it asked for one. A send that fails leaves the outbox mark for the
    sweeper, so the job's final state never depends on the broker."""
    if job is None or not job.webhook_url:
        return
    try:
        _send(WEBHOOK_TASK, WEBHOOK_QUEUE, webhook_task_id(job), [job.id, event_id(job)])
    except Exception as exc:
        log.warning("job %s: webhook not queued (%s); the sweeper will send it", job.id, exc)

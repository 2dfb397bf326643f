"""Webhook delivery on its own queue, so a slow receiver never holds up a GPU worker.

At least once, never twice for one message. The final state and the outbox mark (``webhook_pending``) commit in
one UPDATE; the stage task then queues this task, and if the worker dies before it does, the sweeper finds the
mark and queues it (``adq.tasks.sweeper``). Each attempt is recorded on the job before the message is acknowledged, and
a redelivered message for an event already delivered sends nothing. The event's id (``adq.tasks.enqueue.event_id``)
is the ``webhook-id`` header, the same on every retry, so receivers can drop repeats."""

from __future__ import annotations

import logging

from adq.core import logs
from adq.core.config import get_settings
from adq.core.constants import WEBHOOK_TASK
from adq.core.errors import InputError, TransientError, WebhookError, WebhookUnavailable
from adq.jobs import groups, webhooks
from adq.jobs.db import jobs, outbox
from adq.jobs.schema import JobView
from adq.tasks.app import app
from adq.tasks.base import AdqTask, full_jitter
from adq.tasks.enqueue import event_id as event_id_of

log = logging.getLogger(__name__)


@app.task(base=AdqTask, name=WEBHOOK_TASK, bind=True, max_retries=None, time_limit=120, soft_time_limit=110)
def webhook(self: AdqTask, job_id: str, event_id: str | None = None, outage_since: float | None = None) -> str:
    with logs.job_context(job_id=job_id, stage="webhook", attempt=self.request.retries + 1):
        return _deliver(self, job_id, event_id, outage_since)


def _deliver(self: AdqTask, job_id: str, event_id: str | None, outage_since: float | None) -> str:
    try:
        job = jobs.get(job_id)
        event_id = event_id or event_id_of(job)
        if not job.webhook_url:
            return "none"
        if job.webhook_delivered == event_id:
            outbox.record_webhook(job_id, event_id, outcome="filtered")  # clears a stale outbox mark
            return "duplicate"
        if job.webhook_events is not None and f"job.{job.status.value}" not in job.webhook_events:
            outbox.record_webhook(job_id, event_id, outcome="filtered")
            return "filtered"
        view = JobView.of(job)
        view = view.model_copy(update={"outputs": groups.outputs(view)})  # a group's every image, as stored keys
        body = webhooks.event_body(event_id, view.to_json())
        try:
            status = webhooks.deliver(job.webhook_url, body, event_id, owner=job.owner)
        except WebhookUnavailable as exc:
            last = job.webhook_attempts + 1 >= get_settings().webhook_max_attempts
            outcome = "gave-up" if last else "retrying"
            outbox.record_webhook(job_id, event_id, outcome=outcome, status=exc.status, error=str(exc))
            if last:
                log.error("job %s webhook: giving up after %d attempts: %s", job_id, job.webhook_attempts + 1, exc)
                return outcome
            raise self.retry(countdown=full_jitter(self.request.retries), kwargs={"event_id": event_id}) from exc
        except (WebhookError, InputError) as exc:
            outbox.record_webhook(
                job_id, event_id, outcome="rejected", status=getattr(exc, "status", None), error=str(exc)
            )
            log.error("job %s webhook rejected: %s", job_id, exc)
            return "rejected"
        outbox.record_webhook(job_id, event_id, outcome="delivered", status=status)  # before the ack
    except TransientError as exc:  # the database: wait it out like any stage
        self.wait_out(job_id, exc, outage_since=outage_since, event_id=event_id)
        return "failed"
    log.info("job %s webhook %s delivered (%d)", job_id, event_id, status)
    return "delivered"

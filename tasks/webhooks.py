"""Webhook delivery on its own queue, so a slow receiver never holds up a GPU worker.

At least once, never twice for one message: the delivery is recorded on the job before the message is
acknowledged, and a redelivered message for an event already delivered sends nothing. Each event has an id
(``tasks.enqueue.event_id``) that receivers can deduplicate by."""

from __future__ import annotations

import logging

from shared import webhooks
from shared.config import get_settings
from shared.constants import WEBHOOK_TASK
from shared.db import bookkeeping, jobs
from shared.errors import InputError, TransientError, WebhookError, WebhookUnavailable
from shared.schema import JobView
from tasks.app import app
from tasks.base import AdqTask, full_jitter
from tasks.enqueue import event_id as event_id_of

log = logging.getLogger(__name__)


@app.task(base=AdqTask, name=WEBHOOK_TASK, bind=True, max_retries=None, time_limit=120, soft_time_limit=110)
def webhook(self: AdqTask, job_id: str, event_id: str | None = None, outage_since: float | None = None) -> str:
    try:
        job = jobs.get(job_id)
        event_id = event_id or event_id_of(job)
        if not job.webhook_url:
            return "none"
        if job.webhook_delivered == event_id:
            return "duplicate"
        body = webhooks.event_body(event_id, JobView.of(job).to_json())
        status = webhooks.deliver(job.webhook_url, body, event_id)
        bookkeeping.mark_webhook_delivered(job_id, event_id)  # before the ack: a redelivery finds it
    except WebhookUnavailable as exc:
        if self.request.retries + 1 >= get_settings().webhook_max_attempts:
            log.error("job %s webhook: giving up after %d attempts: %s", job_id, self.request.retries + 1, exc)
            return "gave-up"
        raise self.retry(exc=exc, countdown=full_jitter(self.request.retries), kwargs={"event_id": event_id}) from exc
    except (WebhookError, InputError) as exc:
        log.error("job %s webhook rejected: %s", job_id, exc)
        return "rejected"
    except TransientError as exc:  # the database: wait it out like any stage
        self.wait_out(job_id, exc, outage_since=outage_since, event_id=event_id)
        return "failed"
    log.info("job %s webhook %s delivered (%d)", job_id, event_id, status)
    return "delivered"

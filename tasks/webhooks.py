"""Webhook delivery on its own queue, retried with backoff so a slow receiver never holds up a GPU worker."""

from __future__ import annotations

import logging

from celery import Task

from shared import client, stages, webhooks
from shared.config import settings
from shared.constants import WEBHOOK_TASK
from shared.db import jobs
from shared.errors import InputError, WebhookError, WebhookUnavailable
from tasks.app import app

log = logging.getLogger(__name__)


@app.task(name=WEBHOOK_TASK, bind=True, max_retries=None, time_limit=120, soft_time_limit=110)
def webhook(self: Task, job_id: str) -> str:
    job = jobs.get(job_id)
    if not job.webhook_url:
        return "none"
    url, body = job.webhook_url, webhooks.event_body(client.JobView.of(job).to_json())
    try:
        status = webhooks.deliver(url, body)
    except WebhookUnavailable as exc:
        if self.request.retries + 1 >= settings.webhook_max_attempts:
            log.error("job %s webhook: giving up after %d attempts: %s", job_id, self.request.retries + 1, exc)
            return "gave-up"
        raise self.retry(exc=exc, countdown=stages.backoff_s(self.request.retries))
    except (WebhookError, InputError) as exc:
        log.error("job %s webhook rejected: %s", job_id, exc)
        return "rejected"
    log.info("job %s webhook delivered (%d)", job_id, status)
    return "delivered"

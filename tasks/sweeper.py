"""Re-send jobs whose message may be lost: waiting too long, or running with an expired lease.

A job whose message still waits in the broker (or is delivered and unacked) is left alone, so the sweeper does
not fill the queue with duplicates during a long backlog; where the broker cannot be inspected it re-sends, and a
duplicate is cheap: it finds the stage claimed or done and exits without counting an attempt."""

from __future__ import annotations

import logging
import time

from adq.core.config import get_settings
from adq.jobs.db import jobs, outbox
from adq.tasks.broker import pending_task_ids
from adq.tasks.enqueue import notify, send_stage, webhook_task_id

log = logging.getLogger(__name__)


def sweep_once(older_than_s: float | None = None) -> int:
    s = get_settings()
    # Webhooks owed: a much shorter wait by default, since nothing else will ever send them.
    due = outbox.webhooks_due(s.outbox_after_s if older_than_s is None else older_than_s)
    older_than_s = s.sweep_after_s if older_than_s is None else older_than_s
    stale = outbox.stale(older_than_s)
    if not stale and not due:
        return 0
    # A message delivered longer ago than this and still unacked belongs to a consumer that is gone (one that died
    # with the broker, say): every live holder acks within a stage's run, or a retry countdown (at most
    # ADQ_RETRY_BACKOFF_MAX_S) after delivery. A live one re-sent by mistake finds its stage claimed or done.
    pending = pending_task_ids(unacked_within_s=max(older_than_s, s.retry_backoff_max_s))
    sent = 0
    for job_id in due:  # the webhook outbox: final states committed whose webhook message was never queued
        job = jobs.get(job_id)
        if pending is not None and webhook_task_id(job) in pending:
            continue  # queued, or waiting out a retry countdown
        notify(job)
        sent += 1
        log.info("re-sent job %s's webhook from the outbox", job_id)
    for job_id, stage, queue_priority, preset in stale:
        if pending is not None and stage.task_id(job_id) in pending:
            outbox.mark_enqueued(job_id)  # its message is still there: look again after another sweep_after_s
            continue
        send_stage(stage, job_id, queue_priority, preset)
        outbox.mark_enqueued(job_id)
        sent += 1
        log.info("re-sent job %s to the %s queue", job_id, stage.queue)
    return sent


def sweep_forever(interval_s: float, older_than_s: float | None = None) -> None:
    while True:
        try:
            sweep_once(older_than_s)
        except Exception:  # keep sweeping through a database or broker blip
            log.exception("sweep failed")
        time.sleep(interval_s)

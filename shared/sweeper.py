"""Re-send jobs whose message may be lost: waiting too long, or running with an expired lease.

A duplicate message is harmless (claims are conditional), so the sweeper errs on the side of re-sending."""

from __future__ import annotations

import logging
import time

from shared.config import settings
from shared.db import jobs

log = logging.getLogger(__name__)


def sweep_once(older_than_s: float | None = None) -> int:
    from tasks.enqueue import send_stage

    stale = jobs.stale(settings.sweep_after_s if older_than_s is None else older_than_s)
    for job_id, stage in stale:
        send_stage(job_id, stage)
        jobs.mark_enqueued(job_id)
        log.info("re-sent job %s to the %s queue", job_id, stage)
    return len(stale)


def sweep_forever(interval_s: float) -> None:
    while True:
        try:
            sweep_once()
        except Exception:  # keep sweeping through a database or broker blip
            log.exception("sweep failed")
        time.sleep(interval_s)

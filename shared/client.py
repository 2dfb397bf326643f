"""Jobs for web backends, the queue-free half: check and record a job, read it, wait for it, cancel it.

Sending messages is the Celery layer's job (``tasks.enqueue.submit`` records with ``record`` here, then sends).
Bad input raises InputError before anything is written."""

from __future__ import annotations

import time
from typing import Any

from shared.db import calibrations, jobs
from shared.db.models import Job
from shared.errors import JobFinished, NoImageYet, ObjectNotFound
from shared.params import resolve
from shared.schema import JobView
from shared.storage import get_storage


def record(
    prompt: Any,
    *,
    idempotency_key: str | None = None,
    webhook_url: str | None = None,
    owner: str | None = None,
    **params: Any,
) -> tuple[Job, bool]:
    """Check every input, fix tau from the matching calibration, and insert the queued row. Returns the row and
    whether it was created (False when an idempotency key returned an earlier job)."""
    resolved = resolve(prompt, **params)
    if webhook_url is not None:
        from shared.webhooks import check_url

        check_url(webhook_url)
    calibration_id, percentiles = calibrations.for_job(resolved)
    return jobs.create(
        resolved,
        threshold=percentiles.tau(resolved.k),
        calibration_id=calibration_id,
        idempotency_key=idempotency_key,
        seed_given=params.get("seed") is not None,
        owner=owner,
        webhook_url=webhook_url,
    )


def get(job_id: str) -> JobView:
    return JobView.of(jobs.get(job_id))


def wait(job_id: str, timeout: float | None = None, poll_s: float = 0.2) -> JobView:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        view = get(job_id)
        if view.done:
            return view
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {view.status.value} after {timeout} s")
        time.sleep(poll_s)


def cancel(job_id: str) -> JobView:
    """Cancel an unfinished job (a worker that picks it up does nothing); JobFinished when it already ended."""
    row = jobs.cancel(job_id)
    if row is None:
        raise JobFinished(f"job {job_id} already {jobs.get(job_id).status.value}")
    return JobView.of(row)


def image_bytes(job_id: str, which: str = "final") -> bytes:
    view = get(job_id)
    key = view.final_image_key if which == "final" else view.student_image_key
    if key is None:
        raise NoImageYet(f"job {job_id} has no {which} image yet (status {view.status.value})")
    try:
        return get_storage().get(key)
    except ObjectNotFound:
        raise ObjectNotFound(f"job {job_id}: its {which} image {key!r} is missing from storage") from None

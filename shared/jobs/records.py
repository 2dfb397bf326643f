"""Jobs for web backends, the queue-free half: check and record a job, read it, wait for it, cancel it.

Sending messages is the Celery layer's job (``adq.tasks.enqueue.submit`` records with ``record`` here, then sends).
Bad input raises InputError before anything is written."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adq.core.config import get_settings
from adq.core.errors import InputError, JobFinished, NoImageYet, ObjectNotFound, ResultExpired
from adq.jobs import inputs
from adq.jobs.db import calibrations, jobs, queries
from adq.jobs.db.models import Job
from adq.jobs.priority import PRIORITIES, queue_priority
from adq.jobs.schema import JobView
from adq.jobs.storage import get_storage
from adq.method.params import IMAGE_FIELDS, resolve


def check_delivery(priority: str, webhook_url: str | None, webhook_events) -> list[str] | None:
    if priority not in PRIORITIES:
        raise InputError(f"priority {priority!r} must be one of {', '.join(PRIORITIES)}")
    if webhook_url is None:
        return None  # webhook_events without a webhook_url ask for nothing
    from adq.jobs.webhooks import check_events, check_url

    check_url(webhook_url)
    return check_events(webhook_events)


def prepare(
    prompt: Any,
    *,
    owner: str | None = None,
    unfinished: int | None = None,
    pending: inputs.Pending | None = None,
    **params: Any,
) -> tuple[Job, bool]:
    """Check every input and build the queued row (not yet inserted), with tau fixed from the matching
    calibration. ``unfinished``: the key's unfinished jobs, when the caller counted them. Input images given as a
    URL or data: URI are fetched and checked here, and their bytes added to ``pending`` for the caller to store
    once every job it writes has passed. Returns the row and whether the caller gave a seed."""
    priority = params.pop("priority", None) or "normal"
    webhook_url = params.pop("webhook_url", None)
    events = check_delivery(priority, webhook_url, params.pop("webhook_events", None))
    batch_id = params.pop("batch_id", None)
    num_outputs = params.pop("num_outputs", None)
    resolved = resolve(prompt, **params)
    calibration_id, percentiles = calibrations.for_job(resolved)  # per mode: before any image is fetched
    resolved = _images(resolved, pending if pending is not None else inputs.Pending(owner))
    share = get_settings().fair_share_jobs
    if unfinished is None:
        unfinished = queries.unfinished_of(owner) if owner is not None and share > 0 else 0
    row = jobs.new_row(
        resolved,
        tau=percentiles.tau(resolved.k),
        calibration_id=calibration_id,
        owner=owner,
        webhook_url=webhook_url,
        webhook_events=events,
        priority=priority,
        queue_priority=queue_priority(priority, unfinished, share),
        batch_id=batch_id,
        num_outputs=num_outputs,
    )
    return row, params.get("seed") is not None


def _images(resolved, pending: inputs.Pending):
    """The job's image fields as upload ids: an id must name a stored upload; a URL or data: URI is fetched and
    checked now (its bytes wait in ``pending``)."""
    found = {f: pending.add(getattr(resolved, f), f) for f in IMAGE_FIELDS if getattr(resolved, f) is not None}
    return resolved.model_copy(update=found) if found else resolved


def record(prompt: Any, *, idempotency_key: str | None = None, owner: str | None = None, **params: Any):
    """Check every input and insert the queued row. Returns the row and whether it was created (False when an
    idempotency key returned an earlier job)."""
    pending = inputs.Pending(owner)
    row, seed_given = prepare(prompt, owner=owner, pending=pending, **params)
    pending.store()
    return jobs.insert_row(row, idempotency_key=idempotency_key, seed_given=seed_given)


def get(job_id: str) -> JobView:
    return JobView.of(jobs.get(job_id))


def wait(
    job_id: str, timeout: float | None = None, poll_s: float = 0.2, check: Callable[[], None] | None = None
) -> JobView:
    """Poll until the job ends. ``check`` runs on every poll and may raise: a supervisor passes its liveness check
    so that a dead worker ends the wait within one poll, not at the timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        view = get(job_id)
        if view.done:
            return view
        if check is not None:
            check()
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {view.status.value} after {timeout} s")
        time.sleep(poll_s)


def cancel(job_id: str) -> JobView:
    """Cancel an unfinished job (a worker that picks it up does nothing); JobFinished when it already ended."""
    row = jobs.cancel(job_id)
    if row is None:
        raise JobFinished(f"job {job_id} already {jobs.get(job_id).status.value}")
    return JobView.of(row)


def check_not_expired(view: JobView) -> None:
    if view.expired:
        raise ResultExpired(f"job {view.id}'s images expired under the retention policy (ADQ_RESULT_TTL_S)")


def image_bytes(job_id: str, which: str = "final") -> bytes:
    view = get(job_id)
    check_not_expired(view)
    key = view.final_image_key if which == "final" else view.student_image_key
    if key is None:
        raise NoImageYet(f"job {job_id} has no {which} image yet (status {view.status.value})")
    try:
        return get_storage().get(key)
    except ObjectNotFound:
        raise ObjectNotFound(f"job {job_id}: its {which} image {key!r} is missing from storage") from None

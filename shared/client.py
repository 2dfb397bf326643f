"""Enqueueing for web backends: submit, get, wait, cancel. Bad input raises InputError before anything is written."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from shared.db import calibrations, jobs
from shared.errors import JobNotFound, ObjectNotFound
from shared.params import resolve
from shared.status import TERMINAL, JobStatus
from shared.storage import get_storage

log = logging.getLogger(__name__)

AUDIT_TIMES = ("created_at", "enqueued_at", "student_started_at", "student_finished_at", "teacher_queued_at",
               "teacher_started_at", "finished_at")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


@dataclass(frozen=True)
class JobView:
    id: str
    status: str
    prompt: str
    preset: str
    seed: int
    k: int
    sigma: float
    strategy: str
    student_steps: int
    teacher_steps: int
    threshold: float | None
    student_score: float | None
    teacher_used: bool | None
    student_steps_run: int | None
    teacher_steps_run: int | None
    total_steps: int | None
    student_image_key: str | None
    final_image_key: str | None
    student_attempts: int
    teacher_attempts: int
    error: str | None
    student_worker: str | None
    teacher_worker: str | None
    timings: dict
    times: dict
    idempotency_key: str | None = None
    owner: str | None = None
    webhook_url: str | None = None
    created: bool = True  # False when an idempotency key returned an earlier job

    @property
    def done(self) -> bool:
        return JobStatus(self.status) in TERMINAL

    @classmethod
    def of(cls, job, created: bool = True) -> "JobView":
        fields = {name: getattr(job, name) for name in cls.__dataclass_fields__ if hasattr(job, name)}
        fields.update(timings={"generate_s": job.generate_s, "score_s": job.score_s, "teacher_s": job.teacher_s},
                      times={name: _iso(getattr(job, name)) for name in AUDIT_TIMES}, created=created)
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def submit(prompt: Any, *, idempotency_key: str | None = None, webhook_url: str | None = None,
           owner: str | None = None, **params: Any) -> JobView:
    """Check, record and enqueue a job. The message is sent after the row commits; if sending fails the job
    stays queued and the sweeper sends it later."""
    resolved = resolve(prompt, **params)
    if webhook_url is not None:
        from shared.webhooks import check_url

        check_url(webhook_url)
    calibration_id, percentiles = calibrations.for_job(resolved)
    tau = percentiles.tau(resolved.k)
    job, created = jobs.create(resolved, threshold=tau, calibration_id=calibration_id,
                               idempotency_key=idempotency_key, seed_given=params.get("seed") is not None,
                               owner=owner, webhook_url=webhook_url)
    if created:
        from tasks.enqueue import send_stage

        try:
            send_stage(job.id, "student")
            job = jobs.mark_enqueued(job.id) or job
        except Exception as exc:  # broker down: the row is safe, the sweeper re-sends
            log.warning("job %s recorded but not enqueued (%s); the sweeper will send it", job.id, exc)
    return JobView.of(job, created=created)


def get(job_id: str) -> JobView:
    return JobView.of(jobs.get(job_id))


def wait(job_id: str, timeout: float | None = None, poll_s: float = 0.2) -> JobView:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        view = get(job_id)
        if view.done:
            return view
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {view.status} after {timeout} s")
        time.sleep(poll_s)


def cancel(job_id: str) -> JobView:
    return JobView.of(jobs.cancel(job_id))


def image_bytes(job_id: str, which: str = "final") -> bytes:
    view = get(job_id)
    key = view.final_image_key if which == "final" else view.student_image_key
    if key is None:
        raise JobNotFound(f"job {job_id} has no {which} image yet (status {view.status})")
    try:
        return get_storage().get(key)
    except ObjectNotFound:
        raise JobNotFound(f"job {job_id}: its {which} image {key!r} is missing from storage") from None

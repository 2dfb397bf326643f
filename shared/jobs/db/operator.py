"""An operator's actions on a job beside the stage transitions: the retry of a failed job, back to the stage it
failed at with fresh budgets."""

from __future__ import annotations

from adq.core.errors import JobNotRetryable
from adq.core.status import OPERATOR_RETRY, JobStatus
from adq.jobs.db.jobs import _transition, get, utcnow
from adq.jobs.db.models import Job
from adq.jobs.stage import STUDENT, TEACHER, Stage


def failed_stage(job: Job) -> Stage:
    """The stage a failed job stopped at: the teacher's once the student handed it over."""
    return TEACHER if job.teacher_queued_at is not None else STUDENT


def retry(job_id: str) -> tuple[Job, Stage]:
    """An operator's retry: back to the stage that failed, with fresh budgets; the error moves to history."""
    job = get(job_id)
    if job.status != JobStatus.FAILED:
        raise JobNotRetryable(f"job {job_id} is {job.status.value}; only failed jobs can be retried")
    stage = failed_stage(job)
    entry = {
        "at": utcnow().isoformat(),
        "stage": stage.name,
        "error": job.error,
        "attempts": getattr(job, stage.attempts),
        "transient_retries": job.transient_retries,
    }
    row = _transition(
        job_id,
        stage.waiting,
        {JobStatus.FAILED},
        Job.fence == job.fence,
        allowed=OPERATOR_RETRY,
        history=[*(job.history or []), entry],
        retries=Job.retries + 1,
        error=None,
        finished_at=None,
        lease_until=None,
        transient_since=None,
        enqueued_at=None,
        **{stage.attempts: 0},
    )
    if row is None:
        raise JobNotRetryable(f"job {job_id} changed while it was being retried; look again")
    return row, stage

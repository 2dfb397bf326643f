"""Job bookkeeping beside the stage transitions: an operator's retry, messages sent, webhook deliveries, and the
sweeper's and the metrics' queries."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, func, or_, select, update

from shared.core.errors import JobNotFound, JobNotRetryable
from shared.core.status import OPERATOR_RETRY, TERMINAL, JobStatus
from shared.jobs.db.jobs import LIVE, _transition, get, utcnow
from shared.jobs.db.models import Job
from shared.jobs.db.session import session_scope
from shared.jobs.stage import STAGES, STUDENT, TEACHER, Stage


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


def mark_enqueued(job_id: str) -> Job | None:
    with session_scope() as s:
        return s.scalars(
            update(Job)
            .where(Job.id == job_id)
            .values(enqueued_at=utcnow())
            .returning(Job)
            .execution_options(synchronize_session=False)
        ).one_or_none()


def record_webhook(
    job_id: str, event_id: str, *, outcome: str, status: int | None = None, error: str | None = None
) -> None:
    """One delivery attempt, recorded before the webhook message is acknowledged. ``outcome``: delivered,
    retrying, rejected, gave-up or filtered; every outcome but retrying takes the event out of the outbox, and
    delivered also names it, so a redelivered message sends nothing."""
    values: dict = {}
    if outcome != "filtered":  # an attempt was made
        values |= dict(webhook_last_status=status, webhook_last_error=None if error is None else error[:2000])
        values |= dict(webhook_attempts=Job.webhook_attempts + 1, webhook_last_at=utcnow())
    if outcome != "retrying":
        values["webhook_pending"] = False
    if outcome == "delivered":
        values["webhook_delivered"] = event_id
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(**values).execution_options(synchronize_session=False))


def webhooks_due(older_than_s: float, limit: int = 500) -> list[str]:
    """The outbox: finished jobs whose webhook event is not delivered yet, finished over ``older_than_s`` ago."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with session_scope() as s:
        return list(
            s.scalars(select(Job.id).where(Job.webhook_pending.is_(True), Job.finished_at < cutoff).limit(limit)).all()
        )


def stale(older_than_s: float, limit: int = 500) -> list[tuple[str, Stage, int]]:
    """Jobs whose message may be lost: waiting since long ago, or running with an expired lease."""
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_s)
    waiting = or_(Job.enqueued_at.is_(None), Job.enqueued_at < cutoff)
    out = []
    with session_scope() as s:
        for stage in STAGES:
            expired = or_(Job.lease_until < now, Job.lease_until.is_(None))
            rows = s.execute(
                select(Job.id, Job.queue_priority)
                .where(or_(and_(Job.status == stage.waiting, waiting), and_(Job.status == stage.running, expired)))
                .limit(limit)
            ).all()
            out += [(job_id, stage, priority) for job_id, priority in rows]
    return out


def unfinished_of(owner: str) -> int:
    """A key's unfinished jobs (fairness): an index range on status, bounded by the work in flight."""
    with session_scope() as s:
        return int(s.scalar(select(func.count()).where(Job.owner == owner, Job.status.in_(list(LIVE)))) or 0)


def list_jobs(
    owner: str | None,
    *,
    scoped: bool,
    status: list[JobStatus] | None = None,
    created_after=None,
    created_before=None,
    batch_id: str | None = None,
    before: tuple | None = None,
    limit: int = 50,
) -> list[Job]:
    """A caller's jobs, newest first, by keyset: ``before`` is the (created_at, id) of the last job of the
    previous page, so a page costs an index range whatever the page number."""
    stmt = select(Job)
    if scoped:
        stmt = stmt.where(Job.owner.is_(None) if owner is None else Job.owner == owner)
    if status:
        stmt = stmt.where(Job.status.in_(status))
    if created_after is not None:
        stmt = stmt.where(Job.created_at > created_after)
    if created_before is not None:
        stmt = stmt.where(Job.created_at < created_before)
    if batch_id is not None:
        stmt = stmt.where(Job.batch_id == batch_id)
    if before is not None:
        at, job_id = before
        stmt = stmt.where(or_(Job.created_at < at, and_(Job.created_at == at, Job.id < job_id)))
    with session_scope() as s:
        return list(s.scalars(stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)))


def list_page(owner: str | None, *, scoped: bool, cursor: str | None, limit: int, **filters):
    """One page of ``list_jobs`` and the cursor of the next (None after the last). A cursor is the id of the
    previous page's last job; one the caller could not have been given (missing, another key's) is JobNotFound."""
    before = None
    if cursor is not None:
        after = get(str(cursor))
        if scoped and after.owner != owner:
            raise JobNotFound(f"cursor {cursor} names no job of this API key")
        before = (after.created_at, after.id)
    rows = list_jobs(owner, scoped=scoped, before=before, limit=limit + 1, **filters)
    return rows[:limit], rows[limit - 1].id if len(rows) > limit else None


def count_by_status() -> dict[str, int]:
    with session_scope() as s:
        return {JobStatus(k).value: n for k, n in s.execute(select(Job.status, func.count()).group_by(Job.status))}


def _count_where(statuses) -> dict[str, int]:
    stmt = select(Job.status, func.count()).where(Job.status.in_(list(statuses))).group_by(Job.status)
    with session_scope() as s:
        return {JobStatus(k).value: n for k, n in s.execute(stmt)}


def count_live_by_status() -> dict[str, int]:
    """Jobs not yet finished: an index range on status, bounded by the work in flight, not by the table."""
    return _count_where(LIVE)


def count_terminal_by_status() -> dict[str, int]:
    """Finished jobs: grows with the table (the metrics fallback without Redis, and the operator's view)."""
    return _count_where(TERMINAL)


def recent_arrivals(window_s: float) -> tuple[int, float | None]:
    """Jobs submitted in the last window_s, and the mean k they asked for (None when there were none)."""
    since = utcnow() - timedelta(seconds=window_s)
    with session_scope() as s:
        n, mean_k = s.execute(select(func.count(), func.avg(Job.k)).where(Job.created_at >= since)).one()
    return int(n), None if mean_k is None else float(mean_k)


def recent_teacher_seconds(window_s: float, limit: int = 200) -> float | None:
    """Mean teacher time of the jobs finished in the last window_s (the newest ``limit``), or None."""
    since = utcnow() - timedelta(seconds=window_s)
    recent = (
        select(Job.teacher_s)
        .where(Job.finished_at >= since, Job.teacher_s.is_not(None))
        .order_by(Job.finished_at.desc())
        .limit(limit)
        .subquery()
    )
    with session_scope() as s:
        mean = s.scalar(select(func.avg(recent.c.teacher_s)))
    return None if mean is None else float(mean)

"""Read queries over the jobs table: a caller's job list by keyset, the counts the metrics read, and the
controller's observations. Each is an index range bounded by the work in flight, or says so."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, func, or_, select

from adq.core.errors import JobNotFound
from adq.core.status import TERMINAL, JobStatus
from adq.jobs.db.jobs import LIVE, get, utcnow
from adq.jobs.db.models import Job
from adq.jobs.db.session import session_scope


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
        # A missing job and another key's read the same, word for word: no tenant learns whether an id exists.
        refusal = JobNotFound(f"cursor {cursor} names no job of this API key")
        try:
            after = get(str(cursor))
        except JobNotFound:
            raise refusal from None
        if scoped and after.owner != owner:
            raise refusal
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


def recent_arrivals(window_s: float) -> dict[str | None, tuple[int, float]]:
    """Per owner, the jobs submitted in the last window_s and the mean k they asked for."""
    since = utcnow() - timedelta(seconds=window_s)
    with session_scope() as s:
        rows = s.execute(
            select(Job.owner, func.count(), func.avg(Job.k)).where(Job.created_at >= since).group_by(Job.owner)
        ).all()
    return {owner: (int(n), float(mean_k)) for owner, n, mean_k in rows}


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

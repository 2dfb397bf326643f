"""What the system still owes: stage messages (sent after the commit that records a job; the sweeper re-sends
those that may be lost) and webhook events (recorded per delivery attempt; the sweeper sends those still owed)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from adq.jobs.db.jobs import utcnow
from adq.jobs.db.models import Job
from adq.jobs.db.session import session_scope
from adq.jobs.stage import STAGES, Stage


def mark_enqueued(job_id: str) -> Job | None:
    with session_scope() as s:
        return s.scalars(
            update(Job)
            .where(Job.id == job_id)
            .values(enqueued_at=utcnow())
            .returning(Job)
            .execution_options(synchronize_session=False)
        ).one_or_none()


def stale(older_than_s: float, limit: int = 500) -> list[tuple[str, Stage, int, str]]:
    """Jobs whose message may be lost: waiting since long ago, or running with an expired lease."""
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_s)
    waiting = or_(Job.enqueued_at.is_(None), Job.enqueued_at < cutoff)
    out = []
    with session_scope() as s:
        for stage in STAGES:
            expired = or_(Job.lease_until < now, Job.lease_until.is_(None))
            rows = s.execute(
                select(Job.id, Job.queue_priority, Job.preset)
                .where(or_(and_(Job.status == stage.waiting, waiting), and_(Job.status == stage.running, expired)))
                .limit(limit)
            ).all()
            out += [(job_id, stage, priority, preset) for job_id, priority, preset in rows]
    return out


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

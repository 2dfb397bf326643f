"""Job rows: creation, reads, and every status change as one conditional UPDATE.

Each change names the states it may start from (checked against shared.status.ALLOWED) and, for a running stage,
the attempt that holds the claim: a worker whose claim was taken over by a redelivery cannot overwrite the newer
attempt's result. No session is held across inference; each function opens and commits its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import and_, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from shared.config import settings
from shared.db.models import Job
from shared.db.session import session_scope
from shared.errors import AttemptsExhausted, IdempotencyConflict, JobNotFound
from shared.params import JobParams
from shared.status import STAGE_RUNNING, STAGE_WAITING, TERMINAL, JobStatus, sources_for

STAGES = ("student", "teacher")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _attempts(stage: str):
    return Job.student_attempts if stage == "student" else Job.teacher_attempts


@dataclass(frozen=True)
class Claim:
    job_id: str
    stage: str
    attempt: int
    job: Job  # the row as the claim left it (detached snapshot)


def create(params: JobParams, *, threshold: float | None, calibration_id: int | None,
           idempotency_key: str | None = None, seed_given: bool = True, owner: str | None = None,
           webhook_url: str | None = None) -> tuple[Job, bool]:
    """Insert a queued job. With an idempotency key already used, return that job (created=False), or raise
    IdempotencyConflict when the earlier request had other parameters. A request that left the seed unset got a
    random one, so the seed is compared only when the caller gave it."""
    now = utcnow()
    job = Job(id=str(uuid.uuid4()), idempotency_key=idempotency_key, status=JobStatus.QUEUED.value,
              threshold=threshold, calibration_id=calibration_id, student_attempts=0, teacher_attempts=0,
              owner=owner, webhook_url=webhook_url, created_at=now, updated_at=now, **params.as_dict())
    try:
        with session_scope() as s:
            s.add(job)
        return job, True
    except IntegrityError:
        if idempotency_key is None:
            raise
    existing = get_by_idempotency_key(idempotency_key)
    mine = params.as_dict() | {"webhook_url": webhook_url}
    theirs = job_params(existing) | {"webhook_url": existing.webhook_url}
    if not seed_given:
        mine.pop("seed"), theirs.pop("seed")
    if mine != theirs:
        raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used for a job with other parameters")
    return existing, False


def job_params(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in JobParams.__dataclass_fields__}


def get(job_id: str) -> Job:
    with session_scope() as s:
        job = s.get(Job, str(job_id))
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return job


def get_by_idempotency_key(key: str) -> Job:
    with session_scope() as s:
        job = s.scalars(select(Job).where(Job.idempotency_key == key)).one_or_none()
        if job is None:
            raise JobNotFound(f"no job with idempotency key {key!r}")
        return job


def _transition(job_id: str, to: JobStatus, expect: Iterable[JobStatus], *where, **values) -> Job | None:
    """The single place a status changes. Returns the updated row, or None when the job was not in an expected
    state (UPDATE ... RETURNING: one round trip, no read-then-write race)."""
    expect = frozenset(expect)
    illegal = expect - sources_for(to)
    if illegal:
        raise AssertionError(f"transition {sorted(s.value for s in illegal)} -> {to.value} is not allowed")
    now = utcnow()
    stmt = (update(Job).where(Job.id == job_id, Job.status.in_([s.value for s in expect]), *where)
            .values(status=to.value, updated_at=now, **values).returning(Job)
            .execution_options(synchronize_session=False))
    with session_scope() as s:
        return s.scalars(stmt).one_or_none()


def claim(job_id: str, stage: str, *, may_reclaim: bool, worker: str, lease_s: float) -> Claim | None:
    """Take the stage. A running stage can be taken over only when the message was redelivered or retried (its
    previous holder is gone) or the lease ran out. Past max_attempts the job fails instead of looping."""
    waiting, running = STAGE_WAITING[stage], STAGE_RUNNING[stage]
    attempts = _attempts(stage)
    now = utcnow()
    takeover = true() if may_reclaim else Job.lease_until < now
    cond = or_(Job.status == waiting.value, and_(Job.status == running.value, takeover))
    values = {attempts.key: attempts + 1, "lease_until": now + timedelta(seconds=lease_s),
              f"{stage}_worker": worker[:255], f"{stage}_started_at": now}
    claimed = _transition(job_id, running, {waiting, running}, cond, attempts < settings.max_attempts, **values)
    if claimed is not None:
        return Claim(job_id, stage, getattr(claimed, attempts.key), claimed)
    job = get(job_id)
    if JobStatus(job.status) in (waiting, running) and getattr(job, attempts.key) >= settings.max_attempts:
        if fail(job_id, f"{stage} stage gave up after {getattr(job, attempts.key)} attempts"
                        + (f"; last error: {job.error}" if job.error else "")):
            raise AttemptsExhausted(f"job {job_id}: {stage} stage claimed {getattr(job, attempts.key)} times")
    return None


def _holds(claim: Claim):
    return (Job.status == STAGE_RUNNING[claim.stage].value, _attempts(claim.stage) == claim.attempt)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    strip = (lambda d: d.replace(tzinfo=None) if d.tzinfo else d)  # SQLite returns naive UTC
    return max(0.0, (strip(later) - strip(earlier)).total_seconds())


def student_done(claim: Claim, *, score: float, teacher_used: bool, student_key: str, steps: int,
                 generate_s: float, score_s: float) -> bool:
    now = utcnow()
    common = dict(student_score=score, teacher_used=teacher_used, student_image_key=student_key,
                  student_steps_run=steps, generate_s=generate_s, score_s=score_s, student_finished_at=now,
                  student_wait_s=_seconds(claim.job.student_started_at, claim.job.created_at),
                  lease_until=None, error=None)
    if teacher_used:
        return _transition(claim.job_id, JobStatus.TEACHER_QUEUED, {JobStatus.STUDENT_RUNNING}, *_holds(claim),
                           teacher_queued_at=now, enqueued_at=now, **common) is not None
    return _transition(claim.job_id, JobStatus.SUCCEEDED, {JobStatus.STUDENT_RUNNING}, *_holds(claim),
                       final_image_key=student_key, teacher_steps_run=0, total_steps=steps, finished_at=now,
                       **common) is not None


def teacher_done(claim: Claim, *, final_key: str, steps: int, teacher_s: float, total_steps: int) -> bool:
    return _transition(claim.job_id, JobStatus.SUCCEEDED, {JobStatus.TEACHER_RUNNING}, *_holds(claim),
                       final_image_key=final_key, teacher_steps_run=steps, total_steps=total_steps,
                       teacher_wait_s=_seconds(claim.job.teacher_started_at, claim.job.teacher_queued_at),
                       teacher_s=teacher_s, finished_at=utcnow(), lease_until=None, error=None) is not None


def release(claim: Claim, error: str) -> bool:
    """Give the stage back for a retry after a transient error."""
    return _transition(claim.job_id, STAGE_WAITING[claim.stage], {STAGE_RUNNING[claim.stage]}, *_holds(claim),
                       lease_until=None, error=error[:4000]) is not None


def fail(job_id: str, error: str) -> bool:
    live = set(JobStatus) - TERMINAL
    return _transition(job_id, JobStatus.FAILED, live, error=error[:4000], finished_at=utcnow(),
                       lease_until=None) is not None


def cancel(job_id: str) -> Job:
    """Cancel a job that has not finished; a worker that later picks it up does nothing."""
    live = set(JobStatus) - TERMINAL
    return _transition(job_id, JobStatus.CANCELLED, live, finished_at=utcnow(), lease_until=None) or get(job_id)


def mark_enqueued(job_id: str) -> Job | None:
    with session_scope() as s:
        return s.scalars(update(Job).where(Job.id == job_id).values(enqueued_at=utcnow()).returning(Job)
                         .execution_options(synchronize_session=False)).one_or_none()


def stale(older_than_s: float, limit: int = 500) -> list[tuple[str, str]]:
    """Jobs whose message may be lost: waiting since long ago, or running with an expired lease."""
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_s)
    waiting = or_(Job.enqueued_at.is_(None), Job.enqueued_at < cutoff)
    out = []
    with session_scope() as s:
        for stage in STAGES:
            w, r = STAGE_WAITING[stage].value, STAGE_RUNNING[stage].value
            rows = s.scalars(select(Job.id).where(or_(and_(Job.status == w, waiting),
                                                      and_(Job.status == r, Job.lease_until < now),
                                                      and_(Job.status == r, Job.lease_until.is_(None))))
                             .limit(limit)).all()
            out += [(job_id, stage) for job_id in rows]
    return out


def count_by_status() -> dict[str, int]:
    from sqlalchemy import func

    with session_scope() as s:
        return dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())

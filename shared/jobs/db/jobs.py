"""Job rows: creation, reads, and every status change as one conditional UPDATE.

Each change names the states it may start from (checked against adq.core.status.ALLOWED) and, for a running stage,
the fence of the claim that holds it: every claim takes a new fence value, so a worker whose claim was taken over
cannot overwrite the newer attempt's result. No session is held across inference; each function opens and
commits its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from adq.core.config import get_settings
from adq.core.errors import AttemptsExhausted, IdempotencyConflict, JobNotFound
from adq.core.status import TERMINAL, JobStatus, Route, sources_for
from adq.jobs import metrics
from adq.jobs.db.models import Job, JobEvent
from adq.jobs.db.session import session_scope
from adq.jobs.holders import Claimant
from adq.jobs.stage import TEACHER, Stage
from adq.method.params import JobParams

LIVE = frozenset(set(JobStatus) - TERMINAL)
COUNTERS = ("student_attempts", "teacher_attempts", "fence", "transient_retries", "retries", "webhook_attempts")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(d: datetime | None) -> datetime | None:
    return d if d is None or d.tzinfo else d.replace(tzinfo=UTC)  # SQLite returns naive UTC


def _col(name: str):
    return getattr(Job, name)


@dataclass(frozen=True)
class Claim:
    job_id: str
    stage: Stage
    fence: int  # the claim's token: only the holder of this fence may record or release
    attempt: int  # crashed claims so far, this one included
    job: Job  # the row as the claim left it (detached snapshot)


def insert_row(job: Job, *, idempotency_key: str | None = None, seed_given: bool = True) -> tuple[Job, bool]:
    """Insert a queued row (``new_row``). With an idempotency key already used, return that job (created=False),
    or raise IdempotencyConflict when the earlier request had other parameters. A request that left the seed
    unset got a random one, so the seed is compared only when the caller gave it."""
    job.idempotency_key = idempotency_key
    try:
        with session_scope() as s:
            add_rows(s, [job])
        return job, True
    except IntegrityError:
        if idempotency_key is None:
            raise
    existing = get_by_idempotency_key(idempotency_key)
    if request_of(job, seed_given) != request_of(existing, seed_given):
        raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used for a job with other parameters")
    return existing, False


def request_of(job: Job, seed_given: bool = True) -> dict:
    """What a caller asked for, to compare two requests under one idempotency key."""
    asked = JobParams.of(job).as_dict() | {n: getattr(job, n) for n in ("webhook_url", "webhook_events", "priority")}
    if not seed_given:
        asked.pop("seed")
    return asked


def new_row(params: JobParams, **given) -> Job:
    """A queued jobs row, not yet added to a session."""
    now = utcnow()
    stamps = dict(status=JobStatus.QUEUED, created_at=now, updated_at=now, webhook_pending=False)
    return Job(id=str(uuid.uuid4()), **given, **stamps, **dict.fromkeys(COUNTERS, 0), **params.as_dict())


def add_rows(s, rows: list[Job]) -> None:
    """Insert queued rows and their first event in the caller's transaction (one job, or a whole batch)."""
    s.add_all(rows)
    s.flush()
    events = [dict(job_id=j.id, owner=j.owner, status=j.status.value, at=j.created_at) for j in rows]
    s.execute(insert(JobEvent), events)


def row_by_id(model, row_id: str):
    """A jobs or batches row by id (JobNotFound naming the kind when there is none)."""
    with session_scope() as s:
        row = s.get(model, str(row_id))
        if row is None:
            raise JobNotFound(f"no {model.__name__.lower()} with id {row_id!r}")
        return row


def row_by_idempotency_key(model, key: str):
    with session_scope() as s:
        row = s.scalars(select(model).where(model.idempotency_key == key)).one_or_none()
        if row is None:
            raise JobNotFound(f"no {model.__name__.lower()} with idempotency key {key!r}")
        return row


def get(job_id: str) -> Job:
    return row_by_id(Job, job_id)


def get_by_idempotency_key(key: str) -> Job:
    return row_by_idempotency_key(Job, key)


def _transition(job_id: str, to: JobStatus, expect: Iterable[JobStatus], *where, allowed=None, **values):
    """The single place a status changes. Returns the updated row, or None when the job was not in an expected
    state (UPDATE ... RETURNING: one round trip, no read-then-write race)."""
    expect = frozenset(expect)
    illegal = {s for s in expect if to not in (allowed or {}).get(s, ())} - sources_for(to)
    if illegal:
        raise AssertionError(f"transition {sorted(s.value for s in illegal)} -> {to.value} is not allowed")
    now = utcnow()
    if to in TERMINAL:  # the webhook outbox: marked in the same UPDATE as the final state (adq.tasks.webhooks)
        values.setdefault("webhook_pending", case((Job.webhook_url.is_(None), False), else_=True))
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(expect), *where)
        .values(status=to, updated_at=now, **values)
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    with session_scope() as s:
        row = s.scalars(stmt).one_or_none()
        if row is not None:  # the event log, in the same transaction: streams replay it (adq.jobs.events)
            s.execute(insert(JobEvent).values(job_id=row.id, owner=row.owner, status=to.value, at=now))
    if row is not None and to in TERMINAL:
        metrics.observe((), finished=to)  # after the commit: counted where it happens (adq.jobs.metrics)
    return row


def claim(job_id: str, stage: Stage, who: Claimant, lease_s: float | None = None) -> Claim | None:
    """Take the stage, or return None. A running stage whose lease is live is left alone (one live attempt per
    job and stage) unless its holder is known to be gone: it is this message's own earlier run (``own_fence``),
    or ``holder_gone`` says so. Past max_attempts crashed claims the job fails instead of looping."""
    job = get(job_id)
    if job.status not in (stage.waiting, stage.running):
        return None  # finished, cancelled, or at another stage: a duplicate message
    now = utcnow()
    own = job.status == stage.running and who.own_fence == job.fence  # this message's earlier run, cut off by an outage
    if job.status == stage.running and not own:
        lease = _aware(job.lease_until)
        if lease is not None and lease > now and not who.holder_gone(getattr(job, stage.worker)):
            return None
    attempts = getattr(job, stage.attempts)
    if attempts >= get_settings().max_attempts and not own:
        reason = f"{stage} stage gave up after {attempts} attempts" + (
            f"; last error: {job.error}" if job.error else ""
        )
        if fail(job_id, reason):
            raise AttemptsExhausted(f"job {job_id}: {stage} stage claimed {attempts} times")
        return None
    lease_s = stage.time_limit_s() if lease_s is None else lease_s
    values = {
        "fence": Job.fence + 1,
        stage.worker: who.worker[:255],
        stage.started_at: now,
        "lease_until": now + timedelta(seconds=lease_s),
    }
    if own:  # the same attempt going on after an outage it could not report: not a crash
        values["transient_retries"] = Job.transient_retries + 1
    else:
        values[stage.attempts] = _col(stage.attempts) + 1
    # Compare-and-set on the fence read above: of several messages racing for the stage, one wins.
    row = _transition(
        job_id,
        stage.running,
        {stage.waiting, stage.running},
        Job.status == job.status,
        Job.fence == job.fence,
        **values,
    )
    return None if row is None else Claim(job_id, stage, row.fence, getattr(row, stage.attempts), row)


def _fenced(claim: Claim):
    return (Job.status == claim.stage.running, Job.fence == claim.fence)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (_aware(later) - _aware(earlier)).total_seconds())


_CLEARED = dict(lease_until=None, error=None, transient_since=None)


DECISION_FIELDS = ("tau", "effective_k", "tau_source", "control_policy", "route_reason", "frontier_point")


def record_student(
    claim: Claim,
    route: Route,
    *,
    score: float,
    student_key: str,
    steps: int,
    generate_s: float,
    score_s: float,
    batch: int = 1,
    final_key: str | None = None,
    nsfw: bool | None = None,
    safety_filter: str | None = None,
    **decision,
) -> Job | None:
    """The student stage's result, and the job's next state from its routing decision. ``decision`` holds the
    record of how it was made (DECISION_FIELDS). ``final_key``: the final image when the student's is final and
    stored in another format (default: the student image itself)."""
    unknown = set(decision) - set(DECISION_FIELDS)
    if unknown:
        raise TypeError(f"unknown decision fields: {sorted(unknown)}")
    now = utcnow()
    common = dict(student_score=score, teacher_used=route is Route.TEACHER, student_image_key=student_key, **decision)
    common |= dict(student_steps_run=steps, generate_s=generate_s, score_s=score_s, student_finished_at=now)
    common["student_batch"] = batch
    if route is not Route.TEACHER:  # the safety filter's verdict on the final image, when one ran
        common |= dict(nsfw=nsfw, safety_filter=safety_filter)
    common["student_wait_s"] = _seconds(claim.job.student_started_at, claim.job.created_at)
    if route is Route.TEACHER:
        return _advance(claim, TEACHER.waiting, teacher_queued_at=now, enqueued_at=now, **common, **_CLEARED)
    return _finish(claim, final_key=final_key or student_key, teacher_steps=0, total_steps=steps, **common)


def record_teacher(
    claim: Claim,
    *,
    final_key: str,
    steps: int,
    teacher_s: float,
    batch: int = 1,
    nsfw: bool | None = None,
    safety_filter: str | None = None,
) -> Job | None:
    total = (claim.job.student_steps_run or 0) + steps
    wait = _seconds(claim.job.teacher_started_at, claim.job.teacher_queued_at)
    timing = dict(teacher_wait_s=wait, teacher_s=teacher_s, teacher_batch=batch, nsfw=nsfw, safety_filter=safety_filter)
    return _finish(claim, final_key=final_key, teacher_steps=steps, total_steps=total, **timing)


def _advance(claim: Claim, to: JobStatus, **values) -> Job | None:
    """Move the stage its holder runs (and only its holder, by fence) to ``to``."""
    return _transition(claim.job_id, to, {claim.stage.running}, *_fenced(claim), **values)


def _finish(claim: Claim, *, final_key: str, teacher_steps: int, total_steps: int, **values) -> Job | None:
    done = dict(final_image_key=final_key, teacher_steps_run=teacher_steps, total_steps=total_steps)
    return _advance(claim, JobStatus.SUCCEEDED, **done, finished_at=utcnow(), **values, **_CLEARED)


def release(claim: Claim, error: str) -> Job | None:
    """Give the stage back after a transient error. The claim did not crash, so it is taken off the attempts
    budget; the outage is counted in transient_retries instead, timed from its first failure."""
    now = utcnow()
    return _transition(
        claim.job_id,
        claim.stage.waiting,
        {claim.stage.running},
        *_fenced(claim),
        lease_until=None,
        error=error[:4000],
        last_transient_error=error[:4000],
        transient_retries=Job.transient_retries + 1,
        transient_since=func.coalesce(Job.transient_since, now),
        **{claim.stage.attempts: _col(claim.stage.attempts) - 1},
    )


def note_transient(job_id: str, error: str) -> None:
    """An outage hit before any claim was held (the claim itself failed): count it, change no state."""
    now = utcnow()
    with session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(LIVE))
            .values(
                transient_retries=Job.transient_retries + 1,
                last_transient_error=error[:4000],
                transient_since=func.coalesce(Job.transient_since, now),
            )
            .execution_options(synchronize_session=False)
        )


def fail(job_id: str, error: str) -> Job | None:
    return _transition(job_id, JobStatus.FAILED, LIVE, error=error[:4000], finished_at=utcnow(), lease_until=None)


def cancel(job_id: str) -> Job | None:
    """Cancel a job that has not finished; a worker that later picks it up does nothing. None when it had
    already finished (JobNotFound when there is no such job)."""
    row = _transition(job_id, JobStatus.CANCELLED, LIVE, finished_at=utcnow(), lease_until=None)
    if row is None:
        get(job_id)
    return row


def is_cancelled(job_id: str) -> bool:
    """One primary-key read, made after each denoising step of a running job (adq.method.cancel)."""
    with session_scope() as s:
        return s.scalar(select(Job.status).where(Job.id == job_id)) == JobStatus.CANCELLED


def note_cancelled(job_id: str, steps_done: int | None) -> None:
    """The partial work of a run that a cancel stopped: the steps it had finished."""
    with session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.CANCELLED)
            .values(steps_done=steps_done)
            .execution_options(synchronize_session=False)
        )

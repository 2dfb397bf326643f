"""Job events for the streams (``GET /v1/jobs/{id}/events``, ``GET /v1/events``, ``adq watch``).

Status events come from the ``job_events`` log, which every status change writes in its own transaction; an
event's id is its row id, so a client that reconnects with ``Last-Event-ID`` resumes after the last event it saw.
Ids are handed out before commit, so a later id can become visible before an earlier one: a reader of many jobs
stops at the first missing id and waits for it, and skips it only after ``GAP_GRACE_S`` (an id whose transaction
rolled back never appears). A reader of one job needs no such wait (``_job_events``). Progress events (no id:
they are not replayed) add the position in the queue and an ETA from the service rate measured over the last
minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, func, or_, select

from adq.core.status import TERMINAL, JobStatus
from adq.jobs.db.jobs import utcnow
from adq.jobs.db.models import Job, JobEvent
from adq.jobs.db.session import session_scope

GAP_GRACE_S = 10.0
RATE_WINDOW_S = 60.0
STAGE_OF = {
    JobStatus.QUEUED: "student",
    JobStatus.STUDENT_RUNNING: "student",
    JobStatus.TEACHER_QUEUED: "teacher",
    JobStatus.TEACHER_RUNNING: "teacher",
}
# A waiting state, and the state that ends the wait (its stage's claim).
WAITS = {JobStatus.QUEUED: JobStatus.STUDENT_RUNNING, JobStatus.TEACHER_QUEUED: JobStatus.TEACHER_RUNNING}


@dataclass
class Event:
    type: str  # "status" or "progress"
    job_id: str
    status: str
    id: int | None = None  # status events only
    data: dict = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass
class Cursor:
    """Where one stream stands: the last id delivered, and the missing ids it has waited on since when."""

    after: int = 0
    gaps: dict[int, float] = field(default_factory=dict)

    def advance(self, ids: list[int], now: float) -> int:
        """The highest id up to which every id is either in ``ids`` or a gap older than the grace."""
        horizon = self.after
        for i in ids:
            while horizon + 1 < i:  # ids horizon+1 .. i-1 are not visible (yet)
                first = self.gaps.setdefault(horizon + 1, now)
                if now - first < GAP_GRACE_S:
                    return horizon
                self.gaps.pop(horizon + 1, None)
                horizon += 1
            horizon = i
        return horizon


def _status_events(cursor: Cursor, job_id: str | None, owner: str | None, scoped: bool) -> list[Event]:
    if job_id is not None:
        return _job_events(cursor, job_id)
    with session_scope() as s:
        ids = list(s.scalars(select(JobEvent.id).where(JobEvent.id > cursor.after).order_by(JobEvent.id).limit(1000)))
        horizon = cursor.advance(ids, time.monotonic())
        if horizon == cursor.after:
            return []
        stmt = select(JobEvent).where(JobEvent.id > cursor.after, JobEvent.id <= horizon)
        if scoped:
            stmt = stmt.where(JobEvent.owner.is_(None) if owner is None else JobEvent.owner == owner)
        rows = list(s.scalars(stmt.order_by(JobEvent.id)))
    cursor.after = horizon
    return [_event(r) for r in rows]


def _job_events(cursor: Cursor, job_id: str) -> list[Event]:
    """One job's events need no gap wait: each is written in the transaction that updates the job's row, so the
    row lock orders them, and the next one's id is handed out only after the one before it has committed. Other
    jobs' gaps (a rolled-back or killed transaction's id) would otherwise hold this stream for GAP_GRACE_S."""
    with session_scope() as s:
        stmt = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > cursor.after).order_by(JobEvent.id)
        rows = list(s.scalars(stmt))
    if rows:
        cursor.after = rows[-1].id
    return [_event(r) for r in rows]


def _event(r: JobEvent) -> Event:
    return Event("status", r.job_id, r.status, r.id, {"at": r.at.isoformat(), "stage": STAGE_OF.get(r.status)})


def newest_id() -> int:
    """The id of the newest event in the log (0 when it is empty): where a new stream of every job starts."""
    with session_scope() as s:
        return int(s.scalar(select(func.max(JobEvent.id))) or 0)


def position(job: Job) -> int | None:
    """Jobs ahead of this one in its queue (same queue priority or a better one, waiting longer), or None."""
    if job.status not in WAITS:
        return None
    since = Job.created_at if job.status == JobStatus.QUEUED else Job.teacher_queued_at
    mine = job.created_at if job.status == JobStatus.QUEUED else job.teacher_queued_at
    ahead = or_(Job.queue_priority < job.queue_priority, and_(Job.queue_priority == job.queue_priority, since < mine))
    with session_scope() as s:
        return int(s.scalar(select(func.count()).where(Job.status == job.status, ahead)) or 0)


def service_rate(status: JobStatus) -> float:
    """Claims per second out of a waiting state over the last minute: how fast its queue drains."""
    since = utcnow() - timedelta(seconds=RATE_WINDOW_S)
    with session_scope() as s:
        n = s.scalar(select(func.count()).where(JobEvent.status == WAITS[status].value, JobEvent.at >= since))
    return (n or 0) / RATE_WINDOW_S


def progress(job: Job) -> Event:
    data: dict = {"stage": STAGE_OF.get(job.status), "position": None, "eta_s": None}
    if job.status in WAITS:
        data["position"] = ahead = position(job)
        rate = service_rate(job.status)
        # Three claims in the window at least, or the rate is noise (one claim a minute ago is not 60 s a job).
        data["eta_s"] = round((ahead + 1) / rate, 1) if rate * RATE_WINDOW_S >= 3 else None
    return Event("progress", job.id, job.status.value, None, data)


class Follower:
    """One stream's state. ``poll()`` returns the events due now: status events after the cursor (one job's, or
    every job of ``owner`` when ``scoped``), and a progress event while a single job is unfinished (at most every
    ``progress_every_s``). A single job's stream is ``done`` after its terminal event."""

    def __init__(self, *, job_id=None, owner=None, scoped=True, after: int = 0, progress_every_s: float = 2.0):
        self.job_id, self.owner, self.scoped = job_id, owner, scoped
        self.cursor = Cursor(after)
        self.progress_every_s = progress_every_s
        self.last_progress = 0.0
        self.done = False

    def poll(self) -> list[Event]:
        from adq.jobs.db import jobs

        out = []
        for event in _status_events(self.cursor, self.job_id, self.owner, self.scoped):
            out.append(event)
            if self.job_id is not None and event.terminal:
                self.done = True
                return out
        if self.job_id is None:
            return out
        job = jobs.get(self.job_id)
        if job.status in TERMINAL:
            # Its terminal event was delivered before this stream began (a reconnect after the end).
            self.done = not out and not self.cursor.gaps
        elif time.monotonic() - self.last_progress >= self.progress_every_s:
            self.last_progress = time.monotonic()
            out.append(progress(job))
        return out


def follow(poll_s: float = 0.5, timeout_s: float | None = None, **kwargs) -> Iterator[Event]:
    """The events of a Follower(**kwargs) as they come, for in-process callers (the CLI without ADQ_API_URL)."""
    follower = Follower(**kwargs)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while deadline is None or time.monotonic() < deadline:
        yield from follower.poll()
        if follower.done:
            return
        time.sleep(poll_s)

"""``Prefer: wait=N`` (RFC 7240, Replicate's convention): a submit holds its answer until its jobs end or N seconds
pass, so a backend that wants one request and one image need not poll, stream or take a webhook.

The wait holds no thread: it polls the jobs' rows with one short query in the thread pool, as an event stream polls
the event log (adq.gateway.streams), and sleeps between polls asynchronously. A waiting request counts as an open
stream of its key (ADQ_MAX_STREAMS_PER_KEY), so waits cannot exhaust a gateway either."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import anyio
from fastapi import Header, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from adq.core.config import get_settings
from adq.core.status import TERMINAL
from adq.gateway.streams import OPEN
from adq.jobs.db.models import Job
from adq.jobs.db.session import session_scope

MAX_WAIT_S = 60  # Replicate's ceiling: a proxy between a backend and the gateway often cuts a request at 60-100 s
# `wait` alone means the longest wait; `wait=N` one of 1..60 seconds. Anything else is refused, 600 included.
PATTERN = r"^wait(=([1-9]|[1-5][0-9]|60))?$"
Prefer = Annotated[
    str,
    Header(
        pattern=PATTERN,
        description="`wait=N` (1 to 60) or `wait` (60): answer when the job ends (201) or after N seconds with the "
        "job so far (202); the answer's `Preference-Applied` says the wait was honoured",
    ),
]
WAIT_RESPONSES = {201: {"description": "With `Prefer: wait`: the job ended within the wait; the body is its view"}}


def seconds(prefer: str | None) -> float | None:
    """The wait to honour: the one asked for, cut to ADQ_MAX_WAIT_S; None without a Prefer header (the schema's
    pattern has checked its form)."""
    if not prefer:
        return None
    found = re.fullmatch(PATTERN, prefer)
    return min(float(found.group(2) or MAX_WAIT_S), get_settings().max_wait_s) if found else None


def _unfinished(job_ids: list[str]) -> int:
    with session_scope() as s:
        stmt = select(func.count()).where(Job.id.in_(job_ids), Job.status.not_in(list(TERMINAL)))
        return int(s.scalar(stmt) or 0)


@contextmanager
def slot(prefer: str | None, owner: str | None) -> Iterator[float | None]:
    """The wait asked for, its slot taken before anything is written: over the key's cap the request is refused
    (429) and no job was made."""
    wait_s = seconds(prefer)
    if wait_s is None:
        yield None
        return
    key = owner or "-"
    OPEN.take(key)
    try:
        yield wait_s
    finally:
        OPEN.give(key)


async def hold(job_ids: list[str], wait_s: float) -> bool:
    """Wait until every job ended (True) or ``wait_s`` passed (False), polling without holding a thread."""
    ends_at, poll_s = time.monotonic() + wait_s, get_settings().events_poll_s
    while True:
        if await run_in_threadpool(_unfinished, job_ids) == 0:
            return True
        if time.monotonic() >= ends_at:
            return False
        await anyio.sleep(min(poll_s, max(0.0, ends_at - time.monotonic())))


def applied(response: Response, wait_s: float, done: bool) -> None:
    response.status_code = 201 if done else 202
    response.headers["Preference-Applied"] = f"wait={wait_s:g}"

"""Server-Sent Events (sse-starlette) over the job event log (adq.jobs.events).

Each status event is ``event: status``, ``id: <event id>`` and a JSON ``data`` line with the job id, status,
stage and time; a terminal one carries the whole job view, final links included. Progress events
(``event: progress``) carry the queue position and the ETA and have no id, so a reconnect with Last-Event-ID
replays the status events it missed and nothing else. Polling the log runs in the thread pool, one short query
per poll; the wait between polls is asynchronous, so an open stream holds no thread."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Annotated

import anyio
from fastapi import Header
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from adq.core.config import get_settings
from adq.core.errors import InputError, RateLimited
from adq.core.status import JobStatus
from adq.jobs.events import Event, Follower, newest_id


def _event_schema(kind: str, with_id: bool) -> dict:
    """One event as a client parses it: its type, its id, and a ``data`` line of JSON."""
    data = {
        "type": "object",
        "required": ["job_id", "status"],
        "properties": {
            "job_id": {"type": "string"},
            "status": {"enum": [s.value for s in JobStatus]},
            "job": {"type": "object", "description": "the whole job view, on the terminal event"},
        },
    }
    schema = {
        "type": "object",
        "required": ["event", "data", *(["id"] if with_id else [])],
        "properties": {
            "event": {"const": kind},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }
    return schema


SSE_RESPONSES = {
    200: {
        "content": {
            "text/event-stream": {
                # Open API before 3.2: the schema of a text/event-stream describes each event
                "schema": {"oneOf": [_event_schema("status", True), _event_schema("progress", False)]}
            }
        },
        "description": "An event stream: `status` events with ids, `progress` events without (a client's parser "
        "may repeat the last id on them)",
    }
}


MAX_EVENT_ID = 2**63 - 1  # the log's ids are BIGINT
# What the schema admits: an id this API sent (up to 18 digits; ids reach 10^18 long after anything else breaks)
EVENT_ID_PATTERN = r"^(0|[1-9][0-9]{0,17})$"
# Typed str, not str | None (the default is None all the same): a nullable header's schema admits "null" as a value
LastEventId = Annotated[
    str, Header(pattern=EVENT_ID_PATTERN, description="Resume after this event id (the last `id:` seen)")
]


def _after(last_event_id: str | None) -> int | None:
    if not last_event_id:
        return None
    try:
        after = int(last_event_id)
    except ValueError:
        raise InputError(f"Last-Event-ID {last_event_id[:40]!r} must be an event id this API sent") from None
    if not 0 <= after <= MAX_EVENT_ID:
        raise InputError(f"Last-Event-ID must be an event id between 0 and {MAX_EVENT_ID}")
    return after


class _Open:
    """Open streams per key in this gateway process: over ADQ_MAX_STREAMS_PER_KEY a new one answers 429."""

    def __init__(self):
        self.lock, self.count = threading.Lock(), Counter()

    def take(self, key: str) -> None:
        cap = get_settings().max_streams_per_key
        with self.lock:
            if self.count[key] >= cap:
                raise RateLimited(f"over ADQ_MAX_STREAMS_PER_KEY={cap} open event streams for this key", 30)
            self.count[key] += 1

    def give(self, key: str) -> None:
        with self.lock:
            self.count[key] -= 1


OPEN = _Open()


def _message(event: Event) -> ServerSentEvent:
    data = {"job_id": event.job_id, "status": event.status, **event.data}
    if event.terminal:
        from adq.gateway.routes.jobs import with_links
        from adq.jobs import records

        data["job"] = with_links(records.get(event.job_id)).to_json()
    event_id = None if event.id is None else str(event.id)
    return ServerSentEvent(data=json.dumps(data, default=str), event=event.type, id=event_id)


def stream(*, job_id: str | None, owner: str | None, last_event_id: str | None) -> EventSourceResponse:
    """One job's stream starts at its first event; the stream of every job starts at the newest event unless
    resumed with Last-Event-ID (it never walks the whole log). A stream ends after ADQ_STREAM_LIFETIME_S: the
    client reconnects with Last-Event-ID and misses nothing."""
    # owner None: a reader who may see every job (an operator key, or auth off), as the jobs list does.
    after = _after(last_event_id)
    if after is None:
        after = 0 if job_id is not None else newest_id()
    key = owner or "-"
    OPEN.take(key)
    follower = Follower(job_id=job_id, owner=owner, scoped=owner is not None, after=after)
    s = get_settings()
    poll_s, ends_at = s.events_poll_s, time.monotonic() + s.stream_lifetime_s

    async def messages():
        try:
            while time.monotonic() < ends_at:
                batch = await run_in_threadpool(lambda: [_message(e) for e in follower.poll()])
                for message in batch:
                    yield message
                if follower.done:
                    return
                await anyio.sleep(poll_s)
        finally:
            OPEN.give(key)

    return EventSourceResponse(messages(), ping=15)

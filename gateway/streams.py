"""Server-Sent Events (sse-starlette) over the job event log (shared.jobs.events).

Each status event is ``event: status``, ``id: <event id>`` and a JSON ``data`` line with the job id, status,
stage and time; a terminal one carries the whole job view, final links included. Progress events
(``event: progress``) carry the queue position and the ETA and have no id, so a reconnect with Last-Event-ID
replays the status events it missed and nothing else. Polling the log runs in the thread pool, one short query
per poll; the wait between polls is asynchronous, so an open stream holds no thread."""

from __future__ import annotations

import json

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from shared.core.config import get_settings
from shared.core.errors import InputError
from shared.jobs.events import Event, Follower

SSE_RESPONSES = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "An event stream: `status` events with ids, `progress` events without",
    }
}


def _after(last_event_id: str | None) -> int:
    if not last_event_id:
        return 0
    try:
        after = int(last_event_id)
    except ValueError:
        raise InputError(f"Last-Event-ID {last_event_id[:40]!r} must be an event id this API sent") from None
    if after < 0:
        raise InputError("Last-Event-ID must not be negative")
    return after


def _message(event: Event) -> ServerSentEvent:
    data = {"job_id": event.job_id, "status": event.status, **event.data}
    if event.terminal:
        from gateway.routes.jobs import with_links
        from shared.jobs import client

        data["job"] = with_links(client.get(event.job_id)).to_json()
    event_id = None if event.id is None else str(event.id)
    return ServerSentEvent(data=json.dumps(data, default=str), event=event.type, id=event_id)


def stream(*, job_id: str | None, owner: str | None, last_event_id: str | None) -> EventSourceResponse:
    # owner None: a reader who may see every job (an operator key, or auth off), as the jobs list does.
    follower = Follower(job_id=job_id, owner=owner, scoped=owner is not None, after=_after(last_event_id))
    poll_s = get_settings().events_poll_s

    async def messages():
        while True:
            batch = await run_in_threadpool(lambda: [_message(e) for e in follower.poll()])
            for message in batch:
                yield message
            if follower.done:
                return
            await anyio.sleep(poll_s)

    return EventSourceResponse(messages(), ping=15)

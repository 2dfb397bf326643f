"""/v1/events: one stream of every job of the caller's key."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from adq.gateway import entitlements
from adq.gateway.deps import Reader
from adq.gateway.errors import COUNTED
from adq.gateway.streams import SSE_RESPONSES, LastEventId, stream

router = APIRouter(
    prefix="/v1/events", tags=["events"], responses=COUNTED, dependencies=[Depends(entitlements.counted)]
)


@router.get("", responses=SSE_RESPONSES, response_class=Response)
async def events(who: Reader, last_event_id: LastEventId = None):
    """Server-Sent Events for all of the caller's jobs (an operator key's: every job): a ``status`` event for
    every change, with ids (resume with Last-Event-ID). The stream stays open; ``: ping`` comments keep proxies
    from closing it."""
    return stream(job_id=None, owner=who, last_event_id=last_event_id)

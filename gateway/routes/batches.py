"""/v1/batches: many prompts in one request, one job each; read as a roll-up; cancel together."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from adq.core.config import get_settings
from adq.core.errors import InputError
from adq.core.status import TERMINAL
from adq.gateway import entitlements, wait
from adq.gateway.auth import check_owner
from adq.gateway.deps import Caller, IdempotencyKey
from adq.gateway.errors import COUNTED
from adq.gateway.limits import hit
from adq.gateway.routes.jobs import scope_key, with_links
from adq.jobs import batches
from adq.jobs.db.models import Batch
from adq.jobs.schema import BatchRequest, BatchView, JobView, _iso
from adq.tasks import client as queue

router = APIRouter(
    prefix="/v1/batches", tags=["batches"], responses=COUNTED, dependencies=[Depends(entitlements.counted)]
)


def owned_batch(batch_id: str, who: Caller) -> Batch:
    batch = batches.get(batch_id)
    check_owner(batch.owner, who, batch_id, what="batch")
    return batch


def view_of(batch: Batch, jobs: list[JobView]) -> BatchView:
    rollup: dict[str, int] = {}
    for job in jobs:
        rollup[job.status.value] = rollup.get(job.status.value, 0) + 1
    return BatchView(
        id=batch.id,
        size=batch.size,
        created_at=_iso(batch.created_at),
        status=rollup,
        done=all(j.status in TERMINAL for j in jobs),
        job_ids=[j.id for j in jobs],
        jobs=[with_links(j, live=False) for j in jobs],  # a batch of many: no per-job position queries
    )


@router.post("", status_code=202, response_model=BatchView, responses=wait.WAIT_RESPONSES)
async def create_batch(
    body: BatchRequest,
    response: Response,
    who: Caller,
    idempotency_key: IdempotencyKey = None,
    prefer: wait.Prefer = None,
):
    """Check every item, then record them all in one transaction: one bad item refuses the whole batch with a
    422 naming the item and the field, and nothing is written. ``Prefer: wait=N`` answers when every job ended
    or after N seconds."""
    with wait.slot(prefer, who) as wait_s:
        batch, views = await run_in_threadpool(_submit, body, who, idempotency_key)
        response.headers["Location"] = f"/v1/batches/{batch.id}"
        if wait_s is not None:
            wait.applied(response, wait_s, await wait.hold([v.id for v in views], wait_s))
            return await run_in_threadpool(status, batch)
    return await run_in_threadpool(view_of, batch, views)


def _submit(body: BatchRequest, who: str | None, idempotency_key: str | None):
    if len(body.items) > get_settings().max_batch:
        raise InputError(f"items: a batch holds at most ADQ_MAX_BATCH={get_settings().max_batch} items")
    if len(body.items) > 1:
        hit(who, cost=len(body.items) - 1)  # one hit per item: the router counted the request's first
    shared = body.shared.model_dump(exclude_none=True) | body.model_dump(exclude={"items", "shared"})
    items = [item.model_dump(exclude_none=True) for item in body.items]
    for i, item in enumerate(items):
        entitlements.check(who, shared | item, where=f"items[{i}]: ")
    return queue.submit_batch(items, shared, owner=who, idempotency_key=scope_key(who, idempotency_key))


@router.get("/{batch_id}", response_model=BatchView)
def status(batch: Batch = Depends(owned_batch)):
    return view_of(batch, [JobView.of(row) for row in batches.jobs_of(batch.id)])


@router.post("/{batch_id}/cancel", response_model=BatchView)
def cancel(batch: Batch = Depends(owned_batch)):
    """Cancel every unfinished job of the batch (running ones stop after their current step)."""
    queue.cancel_batch(batch.id)
    return view_of(batch, [JobView.of(row) for row in batches.jobs_of(batch.id)])

"""Batches: many prompts in one request, checked as a whole and written in one transaction.

Every item is checked before anything is written: one bad item refuses the batch with an InputError naming the
item and the field, and no row exists afterwards. An idempotency key returns the earlier batch when the request
is the same, and raises IdempotencyConflict when it is not."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from adq.core.config import get_settings
from adq.core.errors import IdempotencyConflict, InputError
from adq.jobs import inputs, records
from adq.jobs.db import jobs, queries
from adq.jobs.db.models import Batch, Job
from adq.jobs.db.session import session_scope

SIZE_FIELDS = {"width", "height", "aspect_ratio", "megapixels"}


def _hash(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def check_inputs(items: list[dict], shared: dict) -> None:
    limit = get_settings().max_batch
    if not items:
        raise InputError("a batch needs at least one item")
    if len(items) > limit:
        raise InputError(f"a batch holds at most ADQ_MAX_BATCH={limit} items; got {len(items)}")


def create(
    items: list[dict], shared: dict, *, owner: str | None = None, idempotency_key: str | None = None
) -> tuple[Batch, list[Job], bool]:
    """Check every item (each is ``shared`` updated by its own overrides), then insert the batch and its jobs.
    Returns the batch, its jobs in item order, and whether it was created."""
    # 1. Check inputs: the batch as a whole, then every item, before anything is written
    check_inputs(items, shared)
    request_hash = _hash({"items": items, "shared": shared})
    batch_id = str(uuid.uuid4())
    share = get_settings().fair_share_jobs
    unfinished = queries.unfinished_of(owner) if owner is not None and share > 0 else 0
    created_at = jobs.utcnow()
    rows, pending = [], inputs.Pending(owner)  # a URL that several items name is fetched once
    for i, item in enumerate(items):
        own = {k: v for k, v in item.items() if v is not None}
        # An item that gives its own size replaces the shared one, in either form (width and height, or a ratio).
        base = {k: v for k, v in shared.items() if k not in SIZE_FIELDS} if SIZE_FIELDS & own.keys() else shared
        merged = {**base, **own}
        prompt = merged.pop("prompt", None)
        try:
            # The batch's own jobs count towards its key's fair share (adq.jobs.priority).
            row, _ = records.prepare(
                prompt, owner=owner, batch_id=batch_id, unfinished=unfinished + i, pending=pending, **merged
            )
        except InputError as exc:  # the same kind of error, naming the item
            raise type(exc)(f"items[{i}]: {exc}") from None
        row.created_at = row.updated_at = created_at + timedelta(microseconds=i)  # item order, kept in listings
        rows.append(row)
    # 3. Write: the input images of every item, then the batch and every job, with their first events, in one
    #    transaction
    pending.store()
    batch = Batch(
        id=batch_id,
        owner=owner,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        size=len(rows),
        created_at=created_at,
    )
    try:
        with session_scope() as s:
            s.add(batch)
            s.flush()
            jobs.add_rows(s, rows)
        return batch, rows, True
    except IntegrityError:
        if idempotency_key is None:
            raise
    earlier = get_by_key(idempotency_key)
    if earlier.request_hash != request_hash:
        raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used for a batch with other items")
    return earlier, jobs_of(earlier.id), False


def get(batch_id: str) -> Batch:
    return jobs.row_by_id(Batch, batch_id)


def get_by_key(key: str) -> Batch:
    return jobs.row_by_idempotency_key(Batch, key)


def jobs_of(batch_id: str) -> list[Job]:
    with session_scope() as s:
        return list(s.scalars(select(Job).where(Job.batch_id == batch_id).order_by(Job.created_at, Job.id)).all())


def rollup(batch_id: str) -> dict[str, int]:
    with session_scope() as s:
        stmt = select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status)
        return {str(status): n for status, n in s.execute(stmt)}


def cancel(batch_id: str) -> list[Job]:
    """Cancel every unfinished job of the batch; the finished ones stay as they are."""
    cancelled = []
    for job in jobs_of(batch_id):
        row = jobs.cancel(job.id)
        if row is not None:
            cancelled.append(row)
    return cancelled

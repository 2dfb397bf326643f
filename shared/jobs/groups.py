"""Several images from one request (``num_outputs``, as hosted APIs offer it): each image is its own job, seeded
``seed``, ``seed + 1``, …, and routed on its own score; together they are a group, which is a batch (one
transaction, one roll-up at ``GET /v1/batches/{id}``, one cancel). Every job of a group shows the whole group's
images in its ``outputs``, so whichever answer a client reads (the submit's, a job's, a webhook's) carries every
image that exists by then."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from adq.core.errors import InputError
from adq.jobs import batches
from adq.jobs.schema import MAX_OUTPUTS, Output


def split(params: dict) -> tuple[int, list[dict], dict]:
    """A request for ``num_outputs`` images as a group's items: one seed each (the given one, or one drawn here)."""
    n = params.pop("num_outputs", None) or 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_OUTPUTS:
        raise InputError(f"num_outputs={n!r} must be an integer in [1, {MAX_OUTPUTS}]")
    seed = params.pop("seed", None)
    seed = secrets.randbelow(2**31) if seed is None else seed
    return n, [{"seed": seed + i} for i in range(n)], params | {"num_outputs": n}


def outputs(job, link: Callable[[str], str | None] | None = None) -> list[Output]:
    """The images of ``job``'s group (just its own for a single job), in seed order. ``link`` turns a stored key
    into a URL (the gateway's presigned links); without it the key is shown."""
    rows = batches.jobs_of(job.batch_id) if (job.num_outputs or 1) > 1 and job.batch_id else [job]
    return [_output(r, link) for r in rows]


def _output(row, link) -> Output:
    gone = getattr(row, "expired_at", None) or getattr(row, "expired", False)  # a jobs row, or a view
    key = None if row.nsfw or gone else row.final_image_key
    return Output(
        id=row.id,
        seed=row.seed,
        status=row.status,
        final_image_key=key,
        image=link(row.id, key) if link and key else None,
        nsfw=row.nsfw,
    )

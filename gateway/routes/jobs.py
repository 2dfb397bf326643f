"""/v1/jobs: submit, list, read, cancel, retry, the image, and each job's event stream."""

from __future__ import annotations

import logging
import re
from enum import IntEnum
from functools import lru_cache, partial
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import RedirectResponse
from pydantic import AwareDatetime, BaseModel, BeforeValidator
from starlette.concurrency import run_in_threadpool

from adq.core.errors import ImageWithheld, NoImageYet
from adq.core.status import JobStatus
from adq.gateway import entitlements, wait
from adq.gateway.deps import Caller, IdempotencyKey, OwnedJob, Reader
from adq.gateway.errors import COUNTED, ErrorResponse
from adq.gateway.limits import hit
from adq.gateway.streams import SSE_RESPONSES, LastEventId, stream
from adq.jobs import groups, records
from adq.jobs.db import jobs, queries
from adq.jobs.events import WAITS, progress
from adq.jobs.records import check_not_expired
from adq.jobs.schema import ImageLinks, JobRequest, JobView
from adq.jobs.storage import CONTENT_TYPES, FileStorage, get_storage
from adq.tasks import client as queue


# A few sizes, not any: each one is cached per image, and a range would let one image fill the cache for everyone.
class ThumbnailSide(IntEnum):
    small = 64
    medium = 128
    large = 256
    largest = 512


router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=COUNTED, dependencies=[Depends(entitlements.counted)])
log = logging.getLogger(__name__)


Which = Literal["final", "student"]


class JobList(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = None


def with_links(view: JobView, live: bool = True) -> JobView:
    """The view a caller gets: its image links, and none of the server's own facts (worker hosts and pids, raw
    exception text, file paths, a webhook receiver's error); operators read those in logs and `adq status`.
    ``live``: a waiting job's queue position and ETA too (two short queries; lists leave them out)."""
    view = view.model_copy(update=public_facts(view))
    if live and view.status in WAITS:
        now = progress(jobs.get(view.id)).data
        view = view.model_copy(update={"queue_position": now["position"], "eta_s": now["eta_s"]})
    if live or view.num_outputs == 1:  # a group's images cost a query: lists show a job's own
        link = partial(_output_link, get_storage()) if not view.expired else None
        view = view.model_copy(update={"outputs": groups.outputs(view, link)})
    if view.expired:
        return view
    store = get_storage()
    links = {
        name: _served_link(view.id, name, store.link(key))
        for name, key in (("student", view.student_image_key), ("final", view.final_image_key))
        if key
    }
    return view.model_copy(update={"images": ImageLinks(**links)})


def _output_link(store, job_id: str, key: str) -> str:
    return _served_link(job_id, "final", store.link(key))


def _served_link(job_id: str, which: str, link: str) -> str:
    # A file:// link is a path on the server: callers get the gateway's own route for the image instead.
    return f"/v1/jobs/{job_id}/image?which={which}" if link.startswith("file:") else link


def public_error(text: str | None) -> str | None:
    """``stage: ErrorType`` without the exception's own text (hosts, paths, users), or the project's own reason."""
    if text is None:
        return None
    if text.startswith("outage lasted"):
        return text.split("; last error", 1)[0]
    return ": ".join(text.split(": ")[:2])


def public_facts(view: JobView) -> dict:
    history = [{**h, "error": public_error(h.get("error"))} for h in view.history or []]
    webhook = {**view.webhook, "last_error": None} if view.webhook else view.webhook
    withheld = {"student_image_key": None} if view.nsfw else {}  # a flagged job's student image is not linked
    return withheld | {
        "student_worker": None,
        "teacher_worker": None,
        "last_transient_error": None,
        "history": history,
        "error": public_error(view.error),
        "webhook": webhook,
    }


def scope_key(who: str | None, key: str | None) -> str | None:
    # Keys are scoped per API key, so two clients cannot collide (or probe each other's keys).
    return None if key is None else f"{who or '-'}:{key}"


@router.post("", status_code=202, response_model=JobView, responses=wait.WAIT_RESPONSES)
async def create_job(
    body: JobRequest,
    response: Response,
    who: Caller,
    idempotency_key: IdempotencyKey = None,
    prefer: wait.Prefer = None,
):
    """Enqueue a job; with ``Prefer: wait=N``, answer when it ends or after N seconds (a handler that awaits: no
    thread is held while it waits)."""

    def submit() -> JobView:
        entitlements.check(who, body.model_dump())
        if body.num_outputs > 1:
            hit(who, cost=body.num_outputs - 1)  # priced as that many jobs: the router counted the first
        return queue.submit(
            body.prompt,
            idempotency_key=scope_key(who, idempotency_key),
            owner=who,
            **body.model_dump(exclude={"prompt"}),
        )

    with wait.slot(prefer, who) as wait_s:
        view = await run_in_threadpool(submit)
        response.headers["Location"] = f"/v1/jobs/{view.id}"
        log.info("job %s submitted by %s (%s priority)", view.id, who or "anonymous", view.priority)
        if wait_s is not None:
            group = [o.id for o in await run_in_threadpool(groups.outputs, view)]
            wait.applied(response, wait_s, await wait.hold(group, wait_s))
            view = await run_in_threadpool(records.get, view.id)
    return await run_in_threadpool(with_links, view)


def _date_time(value):
    # RFC 3339 only: pydantic would also take a bare number as a Unix time, or a date alone.
    if not isinstance(value, str) or not DATE_TIME.match(value):
        raise ValueError("must be an RFC 3339 date-time with its offset, e.g. 2026-12-01T12:00:00Z")
    return value


DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
DateTime = Annotated[AwareDatetime, BeforeValidator(_date_time)]


@router.get("", response_model=JobList)
def list_jobs(
    who: Reader,
    status: Annotated[list[JobStatus] | None, Query(description="Only jobs in these states")] = None,
    created_after: Annotated[DateTime | None, Query(description="RFC 3339; jobs submitted after it")] = None,
    created_before: Annotated[DateTime | None, Query(description="RFC 3339; jobs submitted before it")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[UUID | None, Query(description="next_cursor of the previous page")] = None,
):
    """The caller's jobs (an operator key's: every job), newest first, a page at a time: pass ``next_cursor`` back
    as ``cursor``."""
    rows, next_cursor = queries.list_page(
        who,
        scoped=who is not None,
        cursor=cursor,
        limit=limit,
        status=status,
        created_after=created_after,
        created_before=created_before,
    )
    return JobList(jobs=[with_links(JobView.of(r), live=False) for r in rows], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobView)
def status(job: OwnedJob):
    return with_links(job)


@router.post("/{job_id}/cancel", response_model=JobView)
def cancel(job: OwnedJob):
    """Cancel an unfinished job: queued, it never runs; running, it stops after its current denoising step and
    frees the worker. 409 when it already finished."""
    return with_links(queue.cancel(job.id))


@router.post("/{job_id}/retry", status_code=202, response_model=JobView)
def retry(job: OwnedJob):
    """Restart a failed job at the stage that failed, with fresh budgets; 409 unless it failed."""
    return with_links(queue.retry(job.id))


@router.get(
    "/{job_id}/image",
    responses={
        200: {
            "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
            "description": "the image (embedded file storage): the final one in the job's output_format, the "
            "student's PNG",
        },
        307: {"description": "a presigned link to the final image"},
        410: {"model": ErrorResponse, "description": "the image expired (ADQ_RESULT_TTL_S)"},
    },
)
def image(job: OwnedJob, which: Annotated[Which, Query(description="final (default) or student")] = "final"):
    key = _image_key(job, which)
    store = get_storage()
    if isinstance(store, FileStorage):
        # The final image's format is the job's, unless the student's PNG is final (a PNG job's, or a key made
        # before output formats existed): the key's extension tells which.
        fmt = job.output_format if which == "final" and not key.endswith(".png") else "png"
        return Response(store.get(key), media_type=CONTENT_TYPES[fmt])
    return RedirectResponse(store.link(key), status_code=307)


@router.get(
    "/{job_id}/thumbnail",
    responses={
        200: {"content": {"image/png": {}}, "description": "the image resized to fit a square of this side"},
        410: {"model": ErrorResponse, "description": "the image expired (ADQ_RESULT_TTL_S)"},
    },
)
def thumbnail(
    job: OwnedJob,
    which: Annotated[Which, Query(description="final (default) or student")] = "final",
    side: Annotated[
        ThumbnailSide, Query(description="longest side in pixels: 64, 128, 256 or 512")
    ] = ThumbnailSide.medium,
):
    """A small rendition for lists (the console's), made once per image and side and cached."""
    return Response(_thumbnail(_image_key(job, which), int(side)), media_type="image/png")


def _image_key(job: JobView, which: str) -> str:
    check_not_expired(job)
    if job.nsfw and which == "student":
        raise ImageWithheld(f"job {job.id}: the safety filter withheld its images; the final one is a placeholder")
    key = job.final_image_key if which == "final" else job.student_image_key
    if key is None:
        raise NoImageYet(f"job {job.id} has no {which} image yet (status {job.status})")
    return key


@lru_cache(maxsize=512)
def _thumbnail(key: str, side: int) -> bytes:
    # Stored images never change under a key, so a rendition can be cached by key for the process's life.
    import io

    from PIL import Image

    from adq.jobs.storage import decode_png

    image = decode_png(get_storage().get(key))
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@router.get("/{job_id}/events", responses=SSE_RESPONSES, response_class=Response)
async def events(job: OwnedJob, who: Reader, last_event_id: LastEventId = None):
    """Server-Sent Events for one job: ``status`` events (with ids; resume with Last-Event-ID), ``progress``
    events with the queue position and an ETA, and the final links in the terminal event, which ends the stream."""
    return stream(job_id=job.id, owner=who, last_event_id=last_event_id)

"""/v1/jobs: submit, read, cancel, retry, and the image."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from gateway.deps import Caller, IdempotencyKey, OwnedJob
from gateway.errors import RESPONSES
from shared import client
from shared.errors import NoImageYet
from shared.schema import ImageLinks, JobRequest, JobView
from shared.storage import FileStorage, get_storage
from tasks import client as queue

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=RESPONSES)


def with_links(view: JobView) -> JobView:
    store = get_storage()
    links = {
        name: store.link(key)
        for name, key in (("student", view.student_image_key), ("final", view.final_image_key))
        if key
    }
    return view.model_copy(update={"images": ImageLinks(**links)})


@router.post("", status_code=202, response_model=JobView)
def submit(body: JobRequest, response: Response, who: Caller, idempotency_key: IdempotencyKey = None):
    # Keys are scoped per API key, so two clients cannot collide (or probe each other's keys).
    scoped = None if idempotency_key is None else f"{who or '-'}:{idempotency_key}"
    view = queue.submit(body.prompt, idempotency_key=scoped, owner=who, **body.model_dump(exclude={"prompt"}))
    response.headers["Location"] = f"/v1/jobs/{view.id}"
    return with_links(view)


@router.get("/{job_id}", response_model=JobView)
def status(job: OwnedJob):
    return with_links(job)


@router.delete("/{job_id}", response_model=JobView)
def cancel(job: OwnedJob):
    return with_links(client.cancel(job.id))


@router.post("/{job_id}/retry", status_code=202, response_model=JobView)
def retry(job: OwnedJob):
    """Restart a failed job at the stage that failed, with fresh budgets; 409 unless it failed."""
    return with_links(queue.retry(job.id))


@router.get("/{job_id}/image", responses={200: {"content": {"image/png": {}}}, 307: {}})
def image(job: OwnedJob):
    if job.final_image_key is None:
        raise NoImageYet(f"job {job.id} has no final image yet (status {job.status})")
    store = get_storage()
    if isinstance(store, FileStorage):
        return Response(store.get(job.final_image_key), media_type="image/png")
    return RedirectResponse(store.link(job.final_image_key), status_code=307)

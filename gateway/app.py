"""FastAPI app: POST/GET/DELETE jobs, the image, health, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.auth import caller, check_owner
from gateway.schemas import ErrorResponse, ImageLinks, JobRequest, JobResponse
from shared import client
from shared.errors import (DatabaseUnavailable, IdempotencyConflict, InputError, JobNotFound, StorageError,
                           StorageUnavailable)
from shared.storage import FileStorage, get_storage

log = logging.getLogger(__name__)
ERRORS = {401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
          409: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}


def _error(status: int, error: str, detail=None, headers=None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _view(view: client.JobView) -> JobResponse:
    store = get_storage()
    links = ImageLinks(**{name: store.link(key) for name, key in
                          (("student", view.student_image_key), ("final", view.final_image_key)) if key})
    return JobResponse(**{k: v for k, v in view.to_json().items() if k in JobResponse.model_fields}, images=links)


def _owned(job_id: str, who: str | None) -> client.JobView:
    view = client.get(job_id)
    check_owner(view.owner, who)
    return view


def create_app() -> FastAPI:
    app = FastAPI(title="adq gateway", version="1", description="Adaptive student->teacher diffusion jobs")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req, exc: RequestValidationError):
        fields = [".".join(str(p) for p in e["loc"] if p != "body") or "body" for e in exc.errors()]
        return _error(422, "invalid request: " + ", ".join(fields),
                      [{"field": f, "message": e["msg"]} for f, e in zip(fields, exc.errors())])

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(_req, exc):
        return _error(409, str(exc))

    @app.exception_handler(InputError)
    async def _input(_req, exc):
        return _error(422, str(exc))

    @app.exception_handler(JobNotFound)
    async def _missing(_req, exc):
        return _error(404, str(exc))

    @app.exception_handler(DatabaseUnavailable)
    @app.exception_handler(StorageUnavailable)
    async def _unavailable(_req, exc):
        return _error(503, str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(_req, exc):
        # Never a bare 500 page: log it and answer JSON the client can retry on.
        log.exception("unexpected gateway error")
        return _error(503, f"internal error: {type(exc).__name__}", headers={"Retry-After": "5"})

    @app.post("/v1/jobs", status_code=202, response_model=JobResponse, responses=ERRORS)
    def submit(body: JobRequest, response: Response, who: str | None = Depends(caller),
               idempotency_key: str | None = Header(default=None, max_length=200)):
        # Keys are scoped per API key, so two clients cannot collide (or probe each other's keys).
        scoped = None if idempotency_key is None else f"{who or '-'}:{idempotency_key}"
        view = client.submit(body.prompt, idempotency_key=scoped, owner=who, **body.model_dump(exclude={"prompt"}))
        response.headers["Location"] = f"/v1/jobs/{view.id}"
        return _view(view)

    @app.get("/v1/jobs/{job_id}", response_model=JobResponse, responses=ERRORS)
    def status(job_id: str, who: str | None = Depends(caller)):
        return _view(_owned(job_id, who))

    @app.delete("/v1/jobs/{job_id}", response_model=JobResponse, responses=ERRORS)
    def cancel(job_id: str, who: str | None = Depends(caller)):
        view = _owned(job_id, who)
        if view.done:
            return _error(409, f"job {job_id} already {view.status}")
        return _view(client.cancel(job_id))

    @app.get("/v1/jobs/{job_id}/image", responses=ERRORS | {200: {"content": {"image/png": {}}}, 307: {}})
    def image(job_id: str, who: str | None = Depends(caller)):
        view = _owned(job_id, who)
        if view.final_image_key is None:
            return _error(409, f"job {job_id} has no final image yet (status {view.status})")
        store = get_storage()
        if isinstance(store, FileStorage):
            try:
                return Response(store.get(view.final_image_key), media_type="image/png")
            except StorageError as exc:
                return _error(404, str(exc))
        return RedirectResponse(store.link(view.final_image_key), status_code=307)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        from gateway.health import readiness

        checks = readiness()
        ok = all(c == "ok" for c in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics(request: Request):
        from gateway.metrics import render

        body, content_type = render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return app

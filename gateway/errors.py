"""One table from the project's errors to HTTP answers, and the handlers that apply it. Every error body is
``{"error": ..., "type": ..., "detail": ...}``: ``type`` is stable, so clients branch on it, never on the message."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from adq.core.errors import (
    AdqError,
    CalibrationError,
    IdempotencyConflict,
    InputError,
    InputTooLarge,
    JobConflict,
    JobNotFound,
    NotEntitled,
    ObjectNotFound,
    RateLimited,
    ResultExpired,
    TransientError,
    UnsupportedMedia,
)

log = logging.getLogger(__name__)

# Most specific first: an IdempotencyConflict is also an InputError, and an ObjectNotFound a StorageError.
STATUS: list[tuple[type[Exception], int]] = [
    (IdempotencyConflict, 409),
    # A valid request the server is not calibrated for yet: `adq calibrate` makes the same request succeed.
    (CalibrationError, 409),
    (InputTooLarge, 413),
    (UnsupportedMedia, 415),
    (InputError, 422),
    (JobNotFound, 404),
    (NotEntitled, 403),
    (ObjectNotFound, 404),
    (JobConflict, 409),
    (ResultExpired, 410),
    (RateLimited, 429),
    (TransientError, 503),  # an outage: clients retry after Retry-After
]
RETRY_AFTER_S = "5"


# The type of an answer that no project error made, by status.
HTTP_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    413: "BodyTooLarge",
    415: "UnsupportedMediaType",
    422: "InvalidRequest",
    429: "RateLimited",
    500: "InternalError",
    503: "Unavailable",
}


class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong, in one sentence, naming the value or the limit")
    type: str = Field(
        description="Stable: the project error's name (JobNotFound, JobConflict, CalibrationError, "
        "IdempotencyConflict, InputError, ResultExpired, RateLimited, StorageUnavailable, ...), or for other "
        "answers one of " + ", ".join(sorted(set(HTTP_TYPES.values())))
    )
    detail: str | list | None = None


RESPONSES = {code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 415, 422, 503)}
LIMITED = {
    429: {
        "model": ErrorResponse,
        "description": "over the key's rate limit (ADQ_RATE_LIMIT), or too many of its input fetches in flight",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
    }
}
# Every route a key's requests are counted on: the project's errors, and the rate limit's 429.
COUNTED = RESPONSES | LIMITED
GUARDED = {
    401: {"model": ErrorResponse, "description": "no ops token (ADQ_OPS_TOKEN) or operator's API key"},
    403: {"model": ErrorResponse, "description": "a credential that may not read operational state"},
}


def error(status: int, message: str, detail=None, headers=None, kind: str | None = None) -> JSONResponse:
    body = {"error": message, "type": kind or HTTP_TYPES.get(status, "Error"), "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: Exception) -> int | None:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), None)


async def _project_error(_req: Request, exc: AdqError) -> JSONResponse:
    status = status_of(exc)
    if status is None:  # a project error the table does not place is still a bug, not an outage
        return await _unexpected(_req, exc)
    headers = {"Retry-After": RETRY_AFTER_S} if status == 503 else None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return error(status, str(exc), headers=headers, kind=type(exc).__name__)


def _named(field: str, e: dict) -> str:
    """``k=101: Input should be less than or equal to 100``: the field, the value given, and what is wrong."""
    value = e.get("input")
    if e.get("type") == "missing" or isinstance(value, (dict, list)) or value is None:
        return f"{field}: {e['msg']}"
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return f"{field}={shown}: {e['msg']}"


async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [".".join(str(p) for p in e["loc"] if p != "body") or "body" for e in exc.errors()]
    return error(
        422,
        "invalid request: " + "; ".join(_named(f, e) for f, e in zip(fields, exc.errors())),
        [{"field": f, "message": e["msg"]} for f, e in zip(fields, exc.errors())],
    )


async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:  # Starlette names only the first route that matched the path; a path has several
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(req))}
    return error(exc.status_code, str(exc.detail), headers=headers)


def allowed_methods(req: Request) -> list[str]:
    """Every method some route serves at the request's path."""
    methods: set[str] = set()
    for route in _leaves(req.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if getattr(route, "methods", None) and regex is not None and regex.match(req.scope["path"]):
            methods |= set(route.methods)
    return sorted(methods | ({"HEAD"} if "GET" in methods else set()))


def _leaves(routes):
    # FastAPI keeps an included router as one entry (``effective_candidates`` lists what it holds, prefixed)
    for route in routes:
        inner = getattr(route, "effective_candidates", None)
        yield from (_leaves(inner()) if callable(inner) else [route])


async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
    # A bug: logged with its traceback and answered 500, so clients do not retry it as if it were an outage.
    log.exception("unexpected gateway error", exc_info=exc)
    return error(500, f"internal error: {type(exc).__name__}")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(AdqError, _project_error)
    app.add_exception_handler(Exception, _unexpected)

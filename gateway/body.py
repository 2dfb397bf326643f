"""The request body, guarded before anything parses it.

- A body over ADQ_MAX_BODY_BYTES answers 413 naming the limit: at once from Content-Length, or as soon as a
  chunked body passes it. Nothing larger than the limit is ever held.
- With API keys configured, a request that carries a body answers 401 before one byte of it is read, unless its
  bearer key is valid: an unauthenticated caller cannot make the gateway read (or parse) what it sends.

A pure ASGI middleware: it sees the body as it streams, where a route sees it only once it is whole."""

from __future__ import annotations

from fastapi import HTTPException

from adq.core.config import get_settings
from adq.gateway.auth import caller, configured_keys
from adq.gateway.errors import error

WITH_BODY = ("POST", "PUT", "PATCH")


class BodyGuard:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if configured_keys():
            try:
                caller((headers.get(b"authorization") or b"").decode("latin-1") or None)
            except HTTPException as exc:
                return await error(401, str(exc.detail), headers=exc.headers)(scope, receive, send)
        limit = body_limit(scope["path"])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _too_large(limit)(scope, receive, send)
        received = 0

        async def counted():
            # Raised as the body streams in: the route's body reader passes an HTTPException on as it is (any
            # other error there becomes FastAPI's 400), and the error table answers it.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _message(limit))
            return message

        await self.app(scope, counted, send)


UPLOADS = "/v1/uploads"
MULTIPART_SLACK = 64 * 1024  # the form's boundaries and part headers around the image


def body_limit(path: str) -> int:
    """Uploads carry an image up to ADQ_MAX_INPUT_BYTES; every other body is JSON, up to ADQ_MAX_BODY_BYTES."""
    s = get_settings()
    return s.max_input_bytes + MULTIPART_SLACK if path == UPLOADS else s.max_body_bytes


def _message(limit: int) -> str:
    if limit == body_limit(UPLOADS):
        return f"upload over ADQ_MAX_INPUT_BYTES={get_settings().max_input_bytes} bytes (field: file)"
    return f"request body over ADQ_MAX_BODY_BYTES={limit} bytes"


def _too_large(limit: int):
    return error(413, _message(limit), kind="BodyTooLarge")

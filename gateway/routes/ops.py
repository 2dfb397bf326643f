"""Health and readiness (open: probes carry no credentials, and they say only "ok" or which dependency is down),
and the operational reads (metrics, queue depths, the controller's value, the OpenAPI document), which need the
ops token or an operator's key once the gateway has keys (adq.gateway.auth.operations)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from adq.gateway.auth import any_caller, operations
from adq.gateway.errors import GUARDED

router = APIRouter(tags=["operations"])
guarded = APIRouter(tags=["operations"], dependencies=[Depends(operations)], responses=GUARDED)


@router.get("/healthz")
def healthz():
    return {"status": "ok"}


@router.get("/readyz")
def readyz():
    from adq.gateway.auth import AUTH_OFF, configured_keys
    from adq.gateway.health import readiness

    checks = readiness()
    ok = all(c == "ok" for c in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    if not configured_keys():  # loud wherever an operator looks, whatever ASGI server runs the app
        body["warnings"] = [AUTH_OFF]
    return JSONResponse(body, status_code=200 if ok else 503)


@guarded.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/openmetrics-text": {"schema": {"type": "string"}},
            },
            "description": "Prometheus text format (OpenMetrics when the Accept header asks for it)",
        }
    },
)
def metrics(request: Request):
    from adq.gateway.metrics import render

    body, content_type = render(request.headers.get("accept"))
    return Response(body, media_type=content_type)


@guarded.get("/v1/queues")
def queues():
    """Messages waiting per queue, summed over the priority steps (KEDA's metrics-api triggers read these: the
    Redis list scaler sees one list, and each queue is one list per priority step)."""
    from adq.tasks.broker import queue_depths

    return {"depths": queue_depths()}


class ControlView(BaseModel):
    """The controller's published value. ``fresh`` is false, and every value null, when there is none (no
    controller, a stale one, or no Redis): "no value", which KEDA's trigger reads as an error and its other
    triggers cover, while the request itself succeeded."""

    fresh: bool
    policy: str | None = None
    share: float | None = Field(None, description="percent of all jobs the teacher should take")
    requested_k: float | None = None
    predicted_p95_s: float | None = None
    desired_teacher_replicas: int | None = None
    at: float | None = Field(None, description="Unix time it was computed")
    leader: str | None = None
    observation: dict | None = None
    keys: dict | None = None


@guarded.get("/v1/control", response_model=ControlView)
def control():
    """The controller's published value (KEDA's metrics-api trigger reads ``desired_teacher_replicas``)."""
    from dataclasses import asdict

    from adq.gateway.control import current

    state = current()
    return ControlView(fresh=False) if state is None else ControlView(fresh=True, **asdict(state))


@router.get(
    "/openapi.json",
    dependencies=[Depends(any_caller)],
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **GUARDED},
)
def openapi(request: Request):
    return JSONResponse(request.app.openapi())

"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz():
    return {"status": "ok"}


@router.get("/readyz")
def readyz():
    from gateway.health import readiness

    checks = readiness()
    ok = all(c == "ok" for c in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


@router.get(
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
    from gateway.metrics import render

    body, content_type = render(request.headers.get("accept"))
    return Response(body, media_type=content_type)


@router.get("/v1/queues")
def queues():
    """Messages waiting per queue, summed over the priority steps (KEDA's metrics-api triggers read these: the
    Redis list scaler sees one list, and each queue is one list per priority step)."""
    from tasks.broker import queue_depths

    return {"depths": queue_depths()}


@router.get("/v1/control", responses={503: {"description": "no fresh value from the controller"}})
def control():
    """The controller's published value (KEDA's metrics-api trigger reads ``desired_teacher_replicas``)."""
    from dataclasses import asdict

    from gateway.control import current

    state = current()
    if state is None:
        from gateway.errors import error

        message = "no fresh value from the controller (is `adq controller` running?)"
        return error(503, message, headers={"Retry-After": "5"}, kind="NoControllerValue")
    return asdict(state)

"""FastAPI app: the routers, and the one error table."""

from __future__ import annotations

import logging
import re

from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from fastapi import FastAPI

from adq.core import logs
from adq.gateway import errors
from adq.gateway.auth import AUTH_OFF, check_ops_token, configured_keys, guarded
from adq.gateway.body import BodyGuard
from adq.gateway.headers import SecurityHeaders
from adq.gateway.routes import batches, console, events, jobs, ops, uploads
from adq.tasks import tracing as tasks_tracing

log = logging.getLogger(__name__)
# The operation ids are part of the API contract: generated clients name their methods after them, so they never
# follow a handler's name (a rename once turned submit_v1_jobs_post into create_job_v1_jobs_post). Pinned by
# tests/integration/test_contract.py; a route without an entry here stops the gateway at start.
OPERATION_IDS = {
    ("POST", "/v1/jobs"): "createJob",
    ("GET", "/v1/jobs"): "listJobs",
    ("GET", "/v1/jobs/{job_id}"): "getJob",
    ("POST", "/v1/jobs/{job_id}/cancel"): "cancelJob",
    ("POST", "/v1/jobs/{job_id}/retry"): "retryJob",
    ("GET", "/v1/jobs/{job_id}/image"): "getJobImage",
    ("GET", "/v1/jobs/{job_id}/thumbnail"): "getJobThumbnail",
    ("GET", "/v1/jobs/{job_id}/events"): "streamJobEvents",
    ("POST", "/v1/batches"): "createBatch",
    ("GET", "/v1/batches/{batch_id}"): "getBatch",
    ("POST", "/v1/batches/{batch_id}/cancel"): "cancelBatch",
    ("POST", "/v1/uploads"): "createUpload",
    ("GET", "/v1/events"): "streamEvents",
    ("GET", "/healthz"): "getHealth",
    ("GET", "/readyz"): "getReadiness",
    ("GET", "/metrics"): "getMetrics",
    ("GET", "/v1/queues"): "getQueues",
    ("GET", "/v1/control"): "getControl",
    ("GET", "/openapi.json"): "getOpenApi",
    ("GET", "/v1/console/now"): "getConsoleNow",
    ("GET", "/v1/console/calibrations"): "listCalibrations",
}


def operation_id(route) -> str:
    """FastAPI's hook for naming operations (generate_unique_id_function): the pinned id, never the handler's."""
    if not route.include_in_schema:  # not in the document, so in no client: FastAPI's own name will do
        from fastapi.utils import generate_unique_id

        return generate_unique_id(route)
    (method,) = route.methods
    try:
        return OPERATION_IDS[(method, route.path)]
    except KeyError:
        raise RuntimeError(
            f"{method} {route.path} has no stable operation id in adq.gateway.app.OPERATION_IDS"
        ) from None


def _request_id_ok(value: str) -> bool:
    # A caller's own id is kept when it is short and plain (it goes into every log line); else a new one is made.
    return bool(re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", value))


def create_app() -> FastAPI:
    from adq.method.presets import all_presets

    all_presets()  # an invalid ADQ_PRESETS_FILE stops the gateway here, naming the file, the preset and the field
    if not configured_keys():  # so do keys that would fail open or collide (adq.gateway.auth)
        log.warning("AUTH IS OFF: %s; set keys before this gateway is reachable by anyone else", AUTH_OFF)
    check_ops_token()
    # The interactive docs only on an open development gateway; with keys, /openapi.json needs a key (routes.ops)
    docs = None if guarded() else "/docs"
    app = FastAPI(
        title="adq gateway",
        version="1",
        description="Adaptive student->teacher diffusion jobs",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    if docs:
        from fastapi.openapi.docs import get_swagger_ui_html

        app.add_api_route(
            docs, lambda: get_swagger_ui_html(openapi_url="/openapi.json", title="adq gateway"), include_in_schema=False
        )
    # A request id per request (X-Request-ID, kept when the caller sends one), on the answer and on every log line.
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID", validator=_request_id_ok)
    logs.add_field("request_id", correlation_id.get)
    errors.install(app)
    app.add_middleware(BodyGuard)  # before any route parses a body: its size, and with keys, the caller's key
    app.add_middleware(SecurityHeaders)  # added last, so outermost: every answer carries them, 413s included
    if tasks_tracing.setup("adq-gateway"):  # one trace per job, from this request on (ADQ_OTEL_EXPORTER)
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)
    app.include_router(jobs.router)
    app.include_router(batches.router)
    app.include_router(uploads.router)
    app.include_router(events.router)
    app.include_router(ops.router)
    app.include_router(ops.guarded)
    app.include_router(console.router)
    app.include_router(console.views)
    return app

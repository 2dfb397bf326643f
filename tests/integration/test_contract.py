"""The OpenAPI document says everything the server does (issue 32): stable operation ids, 429 wherever a key's
requests are counted, 401/403 on the operational endpoints, a 405 that names every method of its path, and the
cross-field rules JSON Schema can state. Generated clients are built from this document, so it is the contract."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import configured

# Part of the contract: a change here breaks every generated client. Add, never rename (docs/http-api.md).
PINNED = {
    "POST /v1/jobs": "createJob",
    "GET /v1/jobs": "listJobs",
    "GET /v1/jobs/{job_id}": "getJob",
    "POST /v1/jobs/{job_id}/cancel": "cancelJob",
    "POST /v1/jobs/{job_id}/retry": "retryJob",
    "GET /v1/jobs/{job_id}/image": "getJobImage",
    "GET /v1/jobs/{job_id}/thumbnail": "getJobThumbnail",
    "GET /v1/jobs/{job_id}/events": "streamJobEvents",
    "POST /v1/batches": "createBatch",
    "GET /v1/batches/{batch_id}": "getBatch",
    "POST /v1/batches/{batch_id}/cancel": "cancelBatch",
    "POST /v1/uploads": "createUpload",
    "GET /v1/events": "streamEvents",
    "GET /healthz": "getHealth",
    "GET /readyz": "getReadiness",
    "GET /openapi.json": "getOpenApi",
    "GET /metrics": "getMetrics",
    "GET /v1/queues": "getQueues",
    "GET /v1/control": "getControl",
    "GET /v1/console/now": "getConsoleNow",
    "GET /v1/console/calibrations": "listCalibrations",
}
OPERATIONAL = ("/metrics", "/v1/queues", "/v1/control", "/openapi.json")
UNCOUNTED = ("/healthz", "/readyz", *OPERATIONAL)


@pytest.fixture()
def document(sqlite_env):
    with configured(ADQ_API_KEYS="alice:key-alice-0123456789"):
        from adq.gateway.app import create_app

        app = create_app()
        yield app.openapi(), TestClient(app, raise_server_exceptions=False)


def _operations(doc):
    return {f"{m.upper()} {p}": op for p, ops in doc["paths"].items() for m, op in ops.items()}


def test_operation_ids_are_pinned(document):
    doc, _ = document
    assert {name: op["operationId"] for name, op in _operations(doc).items()} == PINNED


def test_429_is_documented_wherever_a_key_is_counted_and_401_on_operations(document):
    doc, _ = document
    for name, op in _operations(doc).items():
        path = name.split(" ", 1)[1]
        if path not in UNCOUNTED:
            assert "Retry-After" in op["responses"]["429"]["headers"], name
        if path in OPERATIONAL:
            assert {"401", "403"} <= set(op["responses"]), name
    assert "415" in doc["paths"]["/v1/uploads"]["post"]["responses"]


def test_a_405_names_every_method_of_its_path(document):
    _, api = document
    r = api.request("OPTIONS", "/v1/jobs")
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) >= {"GET", "POST", "HEAD"}, r.headers
    assert set(api.request("DELETE", "/v1/jobs/x").headers["allow"].split(", ")) >= {"GET"}


def test_strength_needs_an_init_image_in_the_schema(document):
    doc, _ = document
    assert doc["components"]["schemas"]["JobRequest"]["dependentRequired"] == {"strength": ["init_image"]}

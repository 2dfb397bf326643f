"""Tracing (ADQ_OTEL_EXPORTER): one job's spans, from the gateway's request through the student, the teacher and
the webhook, share one trace id. A real Celery worker runs in this process (celery.contrib.testing), so the SDK's
in-memory exporter sees the spans of both sides; the trace context crosses the broker in the message headers."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fastapi.testclient import TestClient

from tests.helpers import configured


def _receiver():
    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def test_one_trace_follows_a_job_from_the_gateway_to_the_webhook(sqlite_env):
    from celery.contrib.testing.worker import start_worker
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    from adq.core import tracing
    from adq.core.constants import QUEUES
    from adq.gateway.app import create_app
    from adq.jobs.db import jobs
    from adq.tasks.app import app, ensure_broker_folders

    server, got = _receiver()
    env = dict(ADQ_OTEL_EXPORTER="memory", ADQ_WEBHOOK_SECRET="s", ADQ_WEBHOOK_ALLOW_PRIVATE="true", ADQ_PRESET="null")
    try:
        with configured(**env):
            api = TestClient(create_app())  # sets up tracing and instruments Celery in this process
            ensure_broker_folders()
            with start_worker(app, pool="solo", perform_ping_check=False, queues=list(QUEUES)):
                url = f"http://127.0.0.1:{server.server_port}/hook"
                r = api.post("/v1/jobs", json={"prompt": "a traced heron", "k": 100, "webhook_url": url})
                job_id = r.json()["id"]
                deadline = time.monotonic() + 60
                while not (got and jobs.get(job_id).webhook_delivered) and time.monotonic() < deadline:
                    time.sleep(0.1)
            spans = list(tracing._state["exporter"].get_finished_spans())  # the memory exporter
    finally:
        CeleryInstrumentor().uninstrument()
        server.shutdown()
    assert jobs.get(job_id).teacher_used and got, "the job went through the teacher and its webhook was sent"
    request = next(s for s in spans if s.kind.name == "SERVER" and s.attributes.get("http.route") == "/v1/jobs")
    runs = {s.name: s for s in spans if s.name.startswith("run/")}
    assert {"run/adq.student", "run/adq.teacher", "run/adq.webhook"} <= set(runs), sorted(s.name for s in spans)
    trace_ids = {request.context.trace_id} | {
        runs[f"run/adq.{n}"].context.trace_id for n in ("student", "teacher", "webhook")
    }
    assert len(trace_ids) == 1  # one trace, gateway to webhook
    assert runs["run/adq.teacher"].parent is not None and runs["run/adq.student"].parent is not None

"""Operating the system: metrics after real jobs, signed webhooks with retries, and Flower seeing both pools."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from adq.jobs import webhooks
from adq.tasks import client
from tests.helpers import configured, free_port


def scrape(api) -> dict:
    text = api.get("/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_after_real_jobs(system):
    from adq.gateway.app import create_app

    system.workers("student", "teacher")
    views = [client.submit(f"a red fox number {i}", k=50, seed=500 + i) for i in range(8)]
    done = [client.wait(v.id, timeout=120) for v in views]
    used = sum(v.teacher_used for v in done)
    m = scrape(TestClient(create_app()))
    assert m[("adq_jobs_finished_total", (("status", "succeeded"),))] == 8  # counted by the workers, in Redis
    assert m[("adq_jobs", (("status", "queued"),))] == 0
    assert {("adq_queue_depth", (("queue", q),)) for q in ("student", "teacher", "webhooks")} <= set(m)
    assert m[("adq_teacher_fraction", ())] == used / 8
    assert m[("adq_student_seconds_count", ())] == 8 and m[("adq_student_seconds_sum", ())] > 0
    assert m[("adq_scoring_seconds_count", ())] == 8
    assert m[("adq_teacher_seconds_count", ())] == used
    assert m[("adq_queue_wait_seconds_count", (("stage", "student"),))] == 8
    assert m[("adq_queue_wait_seconds_count", (("stage", "teacher"),))] == used
    scores = sorted(v.student_score for v in done)
    assert m[("adq_estimator_score_bucket", (("le", "+Inf"),))] == 8
    assert m[("adq_estimator_score_bucket", (("le", "2.0"),))] == sum(s <= 2 for s in scores)


class Receiver(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 1

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.headers, body))  # case-insensitive, as HTTP headers are
        code = 500 if len(Receiver.received) <= Receiver.fail_first else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_signed_webhook_is_retried_until_delivered(system):
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook_env = {"ADQ_WEBHOOK_SECRET": "hook-secret", "ADQ_WEBHOOK_ALLOW_PRIVATE": "true", "ADQ_RETRY_BACKOFF_S": "0.5"}
    try:
        system.workers("student", "webhooks", **hook_env)
        with configured(**hook_env):
            url = f"http://127.0.0.1:{server.server_port}/hook"
            view = client.wait(client.submit("a lighthouse", k=0, seed=1, webhook_url=url).id, timeout=60)
            deadline = time.monotonic() + 30
            while len(Receiver.received) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        assert view.status == "succeeded"
        assert len(Receiver.received) == 2  # a 500, then the retry that was accepted
        headers, body = Receiver.received[-1]
        assert webhooks.verify(body, headers, "hook-secret") and not webhooks.verify(body, headers, "wrong")
        # A plain secret is its UTF-8 bytes to any Standard Webhooks library.
        from standardwebhooks.webhooks import Webhook

        assert Webhook(b"hook-secret").verify(body, dict(headers.items()))["data"]["id"] == view.id
        import json

        event = json.loads(body)
        assert event["type"] == "job.succeeded" and event["data"]["id"] == view.id
        assert event["data"]["final_image_key"] == view.final_image_key
        assert headers["webhook-signature"].startswith("v1,") and headers["webhook-id"] == event["id"]
        record = client.get(view.id).webhook  # two attempts: the 500, then the 200
        assert (record["attempts"], record["last_status"], record["delivered"]) == (2, 200, event["id"])
    finally:
        server.shutdown()


def test_flower_sees_both_pools(system, tmp_path):
    system.workers("student", "teacher")
    port = free_port()
    env = {**os.environ, **system.env, "ADQ_FLOWER_PASSWORD": "pw", "ADQ_FLOWER_USER": "ops"}
    log = open(tmp_path / "flower.log", "wb")
    flower = subprocess.Popen(
        [sys.executable, "-m", "adq.cli", "flower", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    auth = {"Authorization": "Basic " + base64.b64encode(b"ops:pw").decode()}
    try:
        deadline, names = time.monotonic() + 60, set()
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/workers?refresh=1", headers=auth)
                import json

                names = set(json.load(urllib.request.urlopen(req, timeout=10)))
                if any(n.startswith("student@") for n in names) and any(n.startswith("teacher@") for n in names):
                    break
            except Exception:
                pass
            time.sleep(0.5)
        assert any(n.startswith("student@") for n in names) and any(n.startswith("teacher@") for n in names), names
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/workers", timeout=10)
            raise AssertionError("Flower answered without basic auth")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "flower_" in metrics
    finally:
        flower.terminate()
        flower.wait(20)

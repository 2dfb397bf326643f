"""The API's promises on the deployed system (real workers, Redis, PostgreSQL, S3 on moto):

- a webhook survives a worker killed between committing the job's final state and queueing its webhook;
- a cancel stops a running teacher within one denoising step and frees the worker, with the event stream
  showing it end to end;
- a key that floods the queue does not starve another key, and a high-priority job overtakes the backlog.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from fastapi.testclient import TestClient

from adq.jobs import webhooks
from adq.jobs.db import jobs
from adq.tasks import client
from tests.e2e.test_overlap_crash import QUICK, _wait
from tests.helpers import CuttableProxy, broker_drained, configured

SECRET = "whsec_" + __import__("base64").b64encode(b"an-e2e-webhook-secret").decode()


class Receiver:
    """A webhook receiver on loopback that records every POST."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://localhost:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()


def test_webhook_is_sent_from_the_outbox_after_a_kill_between_commit_and_send(system):
    hook = {"ADQ_WEBHOOK_SECRET": SECRET, "ADQ_WEBHOOK_ALLOW_PRIVATE": "true"}
    receiver = Receiver()
    port = int(system.env["ADQ_BROKER_URL"].rsplit(":", 1)[1].split("/")[0])
    proxy = CuttableProxy(port)  # the worker's broker (and metrics) connection, stalled after the commit
    via_proxy = {
        "ADQ_BROKER_URL": system.env["ADQ_BROKER_URL"].replace(f":{port}/", f":{proxy.port}/"),
        "ADQ_CONTROL_REDIS_URL": system.env["ADQ_BROKER_URL"],  # decisions and metrics go direct
    }
    try:
        with configured(**hook):
            one = {**QUICK, "ADQ_WORKER_THREADS": "1", "ADQ_NULL_STUDENT_MS": "1500"}
            victim = system.worker("student", **one, **hook, **via_proxy)
            view = client.submit("a lantern", preset="null", k=0, seed=3, webhook_url=receiver.url)
            _wait(lambda: jobs.get(view.id).status == "student_running", 30, "the claim")
            proxy.stall()  # the record commits (PostgreSQL is direct); the webhook's message cannot be sent
            _wait(lambda: jobs.get(view.id).status == "succeeded", 30, "the final state")
            row = jobs.get(view.id)  # no webhook worker runs yet: nothing could have delivered it
            assert row.webhook_pending and row.webhook_attempts == 0 and receiver.received == []
            victim.kill()  # its student message stays delivered and unacked: the stall kept the ack from Redis
            killed_at = time.time()
            proxy.flow()

            system.worker("webhooks", **hook)
            from adq.tasks.sweeper import sweep_once

            assert sweep_once(older_than_s=0) >= 1  # the outbox: the one place that knows the event is owed
            _wait(lambda: jobs.get(view.id).webhook_delivered is not None, 30, "the delivery")
            _wait(lambda: broker_drained(since=killed_at), 30, "every webhook message to be run and acknowledged")
            assert sweep_once(older_than_s=0) == 0
    finally:
        proxy.cut()
        receiver.close()
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert webhooks.verify(body, headers, SECRET) and not webhooks.verify(body, headers, "whsec_" + "A" * 24)
    event = json.loads(body)
    assert event["type"] == "job.succeeded" and event["data"]["id"] == view.id
    row = jobs.get(view.id)
    assert headers["webhook-id"] == event["id"] == row.webhook_delivered
    assert (row.webhook_attempts, row.webhook_last_status, row.webhook_pending) == (1, 200, False)
    assert client.get(view.id).webhook["last_status"] == 200


def test_cancel_stops_a_running_teacher_within_a_step_and_frees_the_worker(system):
    # The teacher's run (8 s) within its hard limit, which QUICK keeps at 8 s.
    limits = {"ADQ_TEACHER_TIME_LIMIT_S": "30", "ADQ_VISIBILITY_TIMEOUT_S": "35"}
    slow = {**QUICK, **limits, "ADQ_WORKER_THREADS": "1", "ADQ_NULL_TEACHER_MS": "8000"}
    system.worker("student", **QUICK)
    system.worker("teacher", name="teacher-cancel", **slow)
    steps = 40  # 0.2 s a step
    first = client.submit("a slow refinement", preset="null", k=100, seed=1, teacher_steps=steps)
    from adq.gateway.app import create_app

    api, streamer = TestClient(create_app()), TestClient(create_app())
    seen = []

    def stream():
        with streamer.stream("GET", f"/v1/jobs/{first.id}/events") as r:
            seen.extend(json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:"))

    reader = threading.Thread(target=stream, daemon=True)
    reader.start()
    _wait(lambda: jobs.get(first.id).status == "teacher_running", 60, "the teacher's claim")
    second = client.submit("the next job", preset="null", k=100, seed=2, teacher_steps=steps)
    _wait(lambda: jobs.get(second.id).status == "teacher_queued", 30, "the next job, behind it")
    time.sleep(1.0)  # some steps in
    cancelled_at = time.monotonic()
    assert api.post(f"/v1/jobs/{first.id}/cancel").json()["status"] == "cancelled"
    _wait(lambda: jobs.get(first.id).steps_done is not None, 5, "the run to stop")
    stopped_after = time.monotonic() - cancelled_at
    _wait(lambda: jobs.get(second.id).status == "teacher_running", 5, "the freed worker to take the next job")
    freed_after = time.monotonic() - cancelled_at
    row = jobs.get(first.id)
    assert row.status == "cancelled" and 3 <= row.steps_done < steps and row.final_image_key is None
    # Stopped and freed long before the run would have ended (0.2 s a step); that the stop comes between two steps
    # is tests/unit/test_runner.py's claim, on a counted step rather than a clock.
    left_s = (steps - row.steps_done) * 0.2
    assert stopped_after < left_s and freed_after < left_s, (stopped_after, freed_after, left_s)
    assert jobs.get(second.id).teacher_worker.startswith("teacher-cancel@")
    client.cancel(second.id)
    reader.join(10)
    statuses = [e["status"] for e in seen if "position" not in e]
    assert statuses == ["queued", "student_running", "teacher_queued", "teacher_running", "cancelled"]
    # The terminal event is the cancel's commit; the steps the run had done are recorded a moment later, by the
    # worker, so the event may or may not carry them yet.
    assert seen[-1]["job"]["status"] == "cancelled" and seen[-1]["job"]["steps_done"] in (None, row.steps_done)


def _p95_wait(ids: list[str]) -> float:
    waits = [jobs.get(i).student_wait_s for i in ids]
    assert None not in waits
    return float(np.percentile(waits, 95))


def test_a_flooding_key_does_not_starve_another_and_high_priority_overtakes(system):
    one_at_a_time = {**QUICK, "ADQ_WORKER_THREADS": "1", "ADQ_NULL_STUDENT_MS": "40", "ADQ_FAIR_SHARE_JOBS": "5"}
    system.worker("student", **one_at_a_time)

    def burst(owner: str, n: int, tag: str, **kw) -> list[str]:
        return [client.submit(f"{tag} {i}", preset="null", k=0, seed=i, owner=owner, **kw).id for i in range(n)]

    def drain(ids):
        _wait(lambda: all(jobs.get(i).status == "succeeded" for i in ids), 120, "the queue to drain")

    alone = burst("b", 10, "alone")
    drain(alone)
    waits = {}
    for share in ("5", "0"):  # fair queueing on, then off: the same flood
        with configured(ADQ_FAIR_SHARE_JOBS=share):
            flood = burst("a", 100, f"flood-{share}")
            vip = burst("a", 1, f"vip-{share}", priority="high")
            b = burst("b", 10, f"b-{share}")
        drain(flood + vip + b)
        waits[share] = _p95_wait(b)
        later = [i for i in flood if jobs.get(i).student_started_at > jobs.get(vip[0]).student_started_at]
        assert len(later) > 50, "the high-priority job waits behind the backlog"
    assert waits["5"] <= 2 * _p95_wait(alone), (waits, _p95_wait(alone))
    assert waits["0"] > 2 * _p95_wait(alone), "without fair shares the flood starves b: the test could fail"

"""An outage never fails a job, and duplicate messages don't burn attempts (real workers, Redis, PostgreSQL, S3).

The outages are cut with a TCP proxy in front of the real service: clients see "connection refused", and the
service keeps its data, as a network partition or a restarting load balancer would leave it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse

from fastapi.testclient import TestClient

from adq.jobs.db import jobs
from adq.jobs.stage import TEACHER
from adq.tasks import client
from adq.tasks.app import app
from tests.e2e.test_crash import objects_of, wait_for
from tests.helpers import CuttableProxy, configured, free_port

# A small backoff cap and a small crash budget: the old policy (one attempt per transient retry) would fail every
# job of these outages within a few seconds.
FAST = {"ADQ_RETRY_BACKOFF_S": "0.5", "ADQ_RETRY_BACKOFF_MAX_S": "2", "ADQ_MAX_ATTEMPTS": "2"}
OUTAGE_S = 3 * float(FAST["ADQ_RETRY_BACKOFF_MAX_S"]) + 0.5
SLOW_TEACHER = {"k": 100, "teacher_steps": 200, "sigma": 1.0}  # several seconds of teacher work on the CPU


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_s3_outage_three_times_the_backoff_cap_fails_no_job(system):
    proxy = CuttableProxy(urlparse(system.env["ADQ_S3_ENDPOINT_URL"]).port)
    env = FAST | {"ADQ_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    system.workers("student", "teacher", **env)
    proxy.cut()
    cut_at = time.monotonic()
    views = [client.submit(f"a paper boat number {i}", k=50, seed=900 + i) for i in range(6)]
    _wait(lambda: all(jobs.get(v.id).transient_retries >= 1 for v in views), 60, "not every job met the outage")
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
    assert all(jobs.get(v.id).status in ("queued", "student_running") for v in views)  # all still waiting it out
    proxy.restore()

    done = [client.wait(v.id, timeout=120) for v in views]
    assert [v.status for v in done] == ["succeeded"] * 6, [v.error for v in done]
    for v in done:
        assert v.student_attempts == 1 and v.teacher_attempts == int(bool(v.teacher_used))  # no crash counted
        assert v.transient_retries >= 1 and "StorageUnavailable" in v.last_transient_error and v.error is None
        assert objects_of(v.id) == (["final.png", "student.png"] if v.teacher_used else ["student.png"])


def test_postgres_outage_mid_stage_is_waited_out_by_the_attempt_that_held_it(system):
    pg = urlparse(system.env["ADQ_DATABASE_URL"])
    proxy = CuttableProxy(pg.port)
    env = FAST | {"ADQ_DATABASE_URL": system.env["ADQ_DATABASE_URL"].replace(f":{pg.port}/", f":{proxy.port}/")}
    _, teacher = system.workers("student", "teacher", **env)
    slow = client.submit("a glass whale in the desert", seed=41, **SLOW_TEACHER)
    wait_for(slow.id, "teacher_running")  # the teacher holds the claim and is denoising
    proxy.cut()  # it cannot record its result, nor give its claim back
    queued = [client.submit(f"a tin robot number {i}", k=50, seed=950 + i) for i in range(4)]
    _wait(
        lambda: f"job {slow.id}: adq.teacher" in teacher.log_path.read_text(),
        120,
        "the teacher never met the outage at its record",
    )
    time.sleep(OUTAGE_S)
    assert jobs.get(slow.id).status == "teacher_running"  # its claim is still held, by an attempt waiting it out
    proxy.restore()

    done = [client.wait(v.id, timeout=150) for v in [slow, *queued]]
    assert [v.status for v in done] == ["succeeded"] * 5, [v.error for v in done]
    assert all(v.student_attempts == 1 for v in done)
    first = done[0]
    # The retry took over its own claim (the fence it could not give back): the same attempt, not a crash.
    assert first.teacher_attempts == 1 and first.transient_retries >= 1, first
    assert objects_of(first.id) == ["final.png", "student.png"]


def test_duplicate_storm_counts_one_attempt_and_finishes_once(system):
    system.worker("student")
    system.worker("teacher", args=["--concurrency", "3"])
    view = client.submit("a clockwork owl at dusk", seed=42, **SLOW_TEACHER)
    wait_for(view.id, "teacher_running")
    # Twenty copies of the teacher message, marked as retries (as redeliveries and the sweeper's re-sends were in
    # the chaos run): each finds the stage held by a live lease and must exit without counting or taking over.
    for _ in range(20):
        app.send_task(TEACHER.task, args=[view.id], task_id=TEACHER.task_id(view.id), queue=TEACHER.queue, retries=1)
    done = client.wait(view.id, timeout=120)
    time.sleep(2.0)  # let the rest of the storm drain
    row = jobs.get(view.id)
    assert (done.status, row.teacher_attempts, row.fence) == ("succeeded", 1, 2), row.error  # student + teacher
    assert objects_of(view.id) == ["final.png", "student.png"]


class Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.headers, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_redelivered_webhook_message_sends_no_second_post(system):
    from adq.tasks.enqueue import notify

    Receiver.received = []
    server = HTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = {"ADQ_WEBHOOK_SECRET": "hook-secret", "ADQ_WEBHOOK_ALLOW_PRIVATE": "true"}
    try:
        system.workers("student", "webhooks", **hook)
        with configured(**hook):
            url = f"http://127.0.0.1:{server.server_port}/hook"
            view = client.wait(client.submit("a lantern", k=0, seed=2, webhook_url=url).id, timeout=60)
            _wait(lambda: jobs.get(view.id).webhook_delivered is not None, 30, "the webhook was never delivered")
            notify(jobs.get(view.id))  # the same event's message again, as after a restart before the ack
            notify(jobs.get(view.id))
            time.sleep(3.0)
        assert len(Receiver.received) == 1
        headers, body = Receiver.received[0]
        event = json.loads(body)
        assert event["id"] == headers["webhook-id"] == jobs.get(view.id).webhook_delivered
        assert event["id"] == f"{view.id}:succeeded:0"
    finally:
        server.shutdown()


def test_operator_retry_restarts_a_failed_job_with_fresh_budgets(system):
    from adq.gateway.app import create_app

    broken = system.worker("student", name="broken", ADQ_STORAGE_URL="s3://no-such-bucket-adq/x")
    failed = [client.wait(client.submit(f"a kite number {i}", k=0, seed=60 + i).id, timeout=90) for i in range(2)]
    assert [v.status for v in failed] == ["failed", "failed"] and "NoSuchBucket" in failed[0].error
    broken.stop()
    system.worker("student", name="fixed")

    again = client.retry(failed[0].id)  # the Python client (and `adq retry`)
    assert (again.status, again.retries, again.student_attempts, again.error) == ("queued", 1, 0, None)
    api = TestClient(create_app())
    r = api.post(f"/v1/jobs/{failed[1].id}/retry")
    assert r.status_code == 202 and r.json()["status"] == "queued"

    for v in failed:
        done = client.wait(v.id, timeout=90)
        assert (done.status, done.student_attempts, done.retries) == ("succeeded", 1, 1)
        assert len(done.history) == 1 and done.history[0]["stage"] == "student"
        assert done.history[0]["error"].startswith("student: StorageError") and done.error is None
    r = api.post(f"/v1/jobs/{failed[0].id}/retry")
    assert r.status_code == 409 and "only failed jobs" in r.json()["error"]


def test_an_outage_past_its_time_budget_fails_the_job_clearly(system):
    proxy = CuttableProxy(urlparse(system.env["ADQ_S3_ENDPOINT_URL"]).port)
    proxy.cut()
    system.worker(
        "student", ADQ_S3_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}", ADQ_TRANSIENT_RETRY_FOR_S="3", **FAST
    )
    done = client.wait(client.submit("a sandcastle", k=0, seed=70).id, timeout=90)
    assert done.status == "failed" and done.student_attempts == 0  # the crash budget was never touched
    assert done.error.startswith("outage lasted over ADQ_TRANSIENT_RETRY_FOR_S=3 s; last error: Interrupted")
    assert done.transient_retries >= 2

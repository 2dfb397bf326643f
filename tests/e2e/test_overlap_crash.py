"""kill -9 an overlapped worker while one job uploads (or records) and the next is in the model.

The overlapped design's new moment of risk: several unacked jobs in one process, in different steps, die together.
S3 (or PostgreSQL) is reached through a proxy that stalls requests, so the first job hangs in its upload (or its
record) after its model run, while the second runs in the model and the third waits for it. Every job must still
finish exactly once, with one final image and one crashed attempt recorded.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from adq.jobs.db import jobs
from adq.tasks import client
from tests.e2e.test_crash import objects_of
from tests.helpers import CuttableProxy, broker_drained

# Leases and redelivery in seconds: the hard limits bound both (the broker must not redeliver a running task).
QUICK = {
    "ADQ_STUDENT_TIME_LIMIT_S": "8",
    "ADQ_TEACHER_TIME_LIMIT_S": "8",
    "ADQ_VISIBILITY_TIMEOUT_S": "10",
    "ADQ_RETRY_BACKOFF_MAX_S": "2",
    "ADQ_PRESET": "null",
    "ADQ_WORKER_THREADS": "3",
}
MODEL_MS = 1500


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _behind_proxy(env: dict, service: str) -> tuple[CuttableProxy, dict]:
    if service == "s3":
        proxy = CuttableProxy(int(env["ADQ_S3_ENDPOINT_URL"].rsplit(":", 1)[1]))
        return proxy, {"ADQ_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    port = urlparse(env["ADQ_DATABASE_URL"]).port
    proxy = CuttableProxy(port)
    return proxy, {"ADQ_DATABASE_URL": env["ADQ_DATABASE_URL"].replace(f":{port}/", f":{proxy.port}/")}


@pytest.mark.parametrize("stage, stalled", [("student", "s3"), ("teacher", "s3"), ("student", "postgres")])
def test_kill_during_overlapped_io_and_model_run(system, stage, stalled):
    proxy, routed = _behind_proxy(system.env, stalled)
    via_proxy = {**routed, **QUICK}
    slow = {f"ADQ_NULL_{stage.upper()}_MS": str(MODEL_MS), "ADQ_NULL_STUDENT_SIDE": "64", "ADQ_NULL_TEACHER_SIDE": "64"}
    k = 100 if stage == "teacher" else 0
    if stage == "teacher":  # the student stage runs first, undisturbed, and hands all three to the teacher queue
        student = system.worker("student", **QUICK)
    ids = [client.submit(f"overlap {i}", preset="null", k=k, seed=500 + i).id for i in range(3)]
    if stage == "teacher":
        _wait(lambda: all(jobs.get(i).status == "teacher_queued" for i in ids), 60, "the teacher queue")
        student.stop()
    victim = system.worker(stage, name=f"{stage}-overlap", **via_proxy, **slow)
    running = f"{stage}_running"
    # All three claimed at once (three task threads), taking turns in the one model thread.
    _wait(lambda: all(jobs.get(i).status == running for i in ids), 30, "three claims")
    time.sleep(0.5)  # past the teacher's download of the student image
    proxy.stall()
    # The first job's model run ends and its upload (or the database writes after it) hangs; the second job is
    # in the model by then.
    _wait(lambda: proxy.held >= 1, MODEL_MS / 1000 * 2 + 10, f"a {stalled} request held in flight")
    time.sleep(MODEL_MS / 1000 / 3)
    assert all(jobs.get(i).status == running for i in ids)
    victim.kill()
    proxy.flow()

    system.worker(stage, name=f"{stage}-after", **QUICK, **{f"ADQ_NULL_{stage.upper()}_MS": "0"})
    done = [client.wait(i, timeout=90) for i in ids]
    _wait(broker_drained, 30, "every message to be run and acknowledged")  # a late duplicate has landed by then
    for view in done:
        row = jobs.get(view.id)
        assert row.status == "succeeded", row.error
        assert getattr(row, f"{stage}_attempts") == 2, "one crashed claim, one that finished"
        assert getattr(row, f"{stage}_worker").startswith(f"{stage}-after@")
        assert objects_of(view.id) == (["final.png", "student.png"] if stage == "teacher" else ["student.png"])


def test_kill_while_a_batch_runs_loses_no_job(system):
    """Four claims in one student batch, the worker killed mid-batch: each job's claim is its own, so each is taken
    over and finished once by the next worker."""
    slow = {**QUICK, "ADQ_NULL_STUDENT_MS": str(MODEL_MS), "ADQ_STUDENT_BATCH_MAX": "4", "ADQ_WORKER_THREADS": "4"}
    ids = [client.submit(f"batched {i}", preset="null", k=0, seed=700 + i).id for i in range(4)]
    victim = system.worker("student", name="student-batch", **slow)
    _wait(lambda: all(jobs.get(i).status == "student_running" for i in ids), 30, "four claims")
    victim.kill()  # the batch of four is in the model (4 x 1.5 s): nothing was recorded
    assert all(jobs.get(i).student_image_key is None for i in ids)
    system.worker("student", name="student-after", **QUICK)
    done = [client.wait(i, timeout=90) for i in ids]
    _wait(broker_drained, 30, "every message to be run and acknowledged")
    for view in done:
        row = jobs.get(view.id)
        assert row.status == "succeeded" and row.student_attempts == 2, row.error
        assert row.student_worker.startswith("student-after@") and objects_of(view.id) == ["student.png"]

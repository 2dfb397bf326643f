"""Transient failures: a storage outage is retried with backoff; a job recorded while the broker was down is
re-sent by the sweeper; a permanent failure fails the job with a clear error instead of looping."""

from __future__ import annotations

import time

from adq.jobs.db import jobs
from adq.tasks import client
from adq.tasks.sweeper import sweep_once
from tests.helpers import BOTH_BROKERS, CuttableProxy, broker_drained, configured

RETRY_FAST = {"ADQ_RETRY_BACKOFF_S": "1", "ADQ_MAX_ATTEMPTS": "6"}


@BOTH_BROKERS
def test_storage_outage_is_retried_until_it_comes_back(system, tmp_path):
    """The backoff is a retry countdown: on quorum queues, Celery's native delayed delivery in RabbitMQ."""
    # The worker's S3 is a proxy that is down from the start; the real server (and its bucket) is behind it, so
    # the outage ends all at once when the proxy listens again.
    proxy = CuttableProxy(int(system.env["ADQ_S3_ENDPOINT_URL"].rsplit(":", 1)[1]))
    proxy.cut()
    system.worker("student", ADQ_S3_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}", **RETRY_FAST)
    view = client.submit("a red fox in the rain", k=0, seed=5)

    deadline = time.monotonic() + 60
    while "StorageUnavailable" not in (jobs.get(view.id).error or ""):
        assert time.monotonic() < deadline, "the outage was never recorded"
        time.sleep(0.1)
    assert jobs.get(view.id).status in ("queued", "student_running")

    proxy.restore()
    done = client.wait(view.id, timeout=90)
    assert done.status == "succeeded", done.error
    # Issue 12: the outage was waited out without spending the crash budget.
    assert done.student_attempts == 1 and done.transient_retries >= 1 and done.error is None
    assert "StorageUnavailable" in done.last_transient_error


def test_permanent_error_fails_the_job_with_a_clear_message(system):
    system.worker("student", ADQ_STORAGE_URL="s3://no-such-bucket-adq/x")
    done = client.wait(client.submit("a lighthouse", seed=6).id, timeout=90)
    assert done.status == "failed" and done.student_attempts == 1
    assert "NoSuchBucket" in done.error and done.error.startswith("student: StorageError")


@BOTH_BROKERS
def test_sweeper_sends_jobs_recorded_while_the_broker_was_down(system):
    down = {"redis": "redis://127.0.0.1:1/0", "amqp": "amqp://guest:guest@127.0.0.1:1//"}[system.broker]
    with configured(ADQ_BROKER_URL=down):
        view = client.submit("a koi pond", seed=8)
    assert view.status == "queued" and view.times["enqueued_at"] is None
    system.workers("student", "teacher")
    assert broker_drained()  # no message was ever sent: with workers consuming, nothing can run it ...
    assert jobs.get(view.id).status == "queued"  # ... until the sweeper sends one
    assert sweep_once(older_than_s=0) == 1
    done = client.wait(view.id, timeout=60)
    assert done.status == "succeeded" and done.student_attempts == 1
    assert sweep_once(older_than_s=0) == 0  # finished jobs are never re-sent

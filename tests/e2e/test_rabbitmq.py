"""RabbitMQ under disruption: the machine's RabbitMQ restarted (``rabbitmqctl stop_app``/``start_app``) and every
connection to it dropped mid-delivery, with every job of the run in flight, under busy workers of every pool on
quorum queues. Every worker keeps its pid, and every job ends succeeded with one final image and its webhook, as
on Redis (tests/e2e/test_broker_restart.py). ADQ_TEST_RESTART_JOBS sets the load (the closing note's run used 200)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from adq.tasks import client
from tests.conftest import rabbitmqctl
from tests.e2e.test_broker_restart import FAST, Receiver, _all_final, receiver  # noqa: F401  (a fixture)
from tests.e2e.test_crash import objects_of
from tests.helpers import configured

JOBS = int(os.environ.get("ADQ_TEST_RESTART_JOBS", "36"))
DISRUPTIONS = ("restart", "drop connections", "restart")


def disrupt(how: str) -> None:
    if how == "restart":
        rabbitmqctl("stop_app")
        time.sleep(1.0)
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
    else:
        rabbitmqctl("close_all_connections", "adq test: connections dropped mid-delivery")


@pytest.mark.parametrize("system", ["amqp"], indirect=True)
def test_workers_and_jobs_outlive_rabbitmq_restarts_and_dropped_connections(system, receiver):  # noqa: F811
    group = system.workers("student", "teacher", "webhooks", **FAST)
    pids = {w.pool: w.pid for w in group}
    ids: list[str] = []
    with configured(**FAST):
        _run(ids, JOBS, receiver)
        for w in group:  # nobody died: the same processes, reconnected
            assert w.alive() and w.pid == pids[w.pool], w.exit_report()
        ids += [client.submit(f"a kite after {i}", k=100, seed=900 + i, webhook_url=receiver).id for i in range(3)]
        rows = _all_final(ids, timeout=240)
    assert [r.status for r in rows] == ["succeeded"] * len(ids), [(r.id, r.error) for r in rows]
    for r in rows:  # one final image each: a redelivered stage found its claim fenced or its job done
        assert objects_of(r.id) == (["final.png", "student.png"] if r.teacher_used else ["student.png"]), r.id
    assert {r.webhook_delivered for r in rows} <= set(Receiver.event_ids)  # each job's webhook arrived
    for w in group:
        assert w.alive() and w.pid == pids[w.pool]
        assert "Unrecoverable error" not in w.log_path.read_text()


def _run(ids: list[str], jobs: int, hook: str) -> None:
    """Every job submitted first: the disruptions come while they wait, run and hand over to the teacher."""
    ids += [client.submit(f"a paper lantern {i}", k=50, seed=i, webhook_url=hook).id for i in range(jobs)]
    try:
        for how in DISRUPTIONS:
            time.sleep(1.0)  # the workers are busy with them: delivered, unacked, running
            disrupt(how)
    finally:  # a failed restart must not leave the machine's RabbitMQ stopped for the rest of the suite
        subprocess.run(["rabbitmqctl", "-q", "start_app"], capture_output=True, timeout=60)

"""A 20-second partition that drops every packet between the workers, sweeper and gateway and their PostgreSQL,
Redis and S3 (tests/partition.py): once it heals, nothing stays stuck. Connections that were open stay open and
silent, and connections attempted during the cut get no answer at all; what bounds every wait is a timeout we set
(docs/operations.md, "Timeouts"): without them a blocked connect or read holds a worker for minutes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from adq.jobs.db import jobs
from adq.tasks import client
from adq.workers.processes import WorkerGroup, WorkerProcess
from tests.helpers import free_port
from tests.partition import Partition

CUT_S = 20
AFTER_HEAL_S = 30  # every job submitted before, during and after the cut ends within this of the heal (11 s seen)
FAST = {
    "ADQ_RETRY_BACKOFF_S": "0.5",
    "ADQ_RETRY_BACKOFF_MAX_S": "2",
    "ADQ_TRANSIENT_RETRY_FOR_S": "300",
    "ADQ_UNACKED_RESTORE_INTERVAL_S": "1",
    "ADQ_LIVENESS_INTERVAL_S": "1",
}


@pytest.fixture()
def partition():
    if os.geteuid() != 0:
        pytest.fail("the partition tests need root (network namespaces)")
    part = Partition()
    yield part
    part.down()


def test_nothing_stays_stuck_after_a_partition_heals(system, partition):
    env = {
        **os.environ,
        **system.env,
        **FAST,
        "ADQ_BROKER_URL": partition.url(system.env["ADQ_BROKER_URL"]),
        "ADQ_DATABASE_URL": partition.url(system.env["ADQ_DATABASE_URL"]),
        "ADQ_S3_ENDPOINT_URL": partition.url(system.env["ADQ_S3_ENDPOINT_URL"]),
    }
    cli = [*partition.prefix, sys.executable, "-m", "adq.cli"]
    group = WorkerGroup(
        [WorkerProcess(p, system.log_dir, env=env, prefix=partition.prefix) for p in ("student", "teacher", "webhooks")]
    )
    port = free_port()
    gateway = f"http://{partition.ns_ip}:{port}"
    logs = open(system.log_dir / "partition-services.log", "ab")
    services = [
        subprocess.Popen([*cli, "sweep", "--loop", "--interval", "1", "--older-than", "5"], env=env, stderr=logs),
        subprocess.Popen(
            [*cli, "api", "--host", partition.ns_ip, "--port", str(port), "--insecure"], env=env, stderr=logs
        ),
    ]
    try:
        group.wait_ready()
        pids = [w.pid for w in group]
        ids = [client.submit("a kite before", k=100, seed=1).id]
        assert client.wait(ids[0], timeout=60).status == "succeeded"
        ids += [client.submit(f"a kite in flight {i}", k=50, seed=10 + i).id for i in range(4)]
        time.sleep(0.3)
        partition.cut()
        ids += [client.submit(f"a kite during {i}", k=50, seed=20 + i).id for i in range(3)]
        time.sleep(CUT_S / 2)
        partition.forget()
        time.sleep(CUT_S / 2)
        partition.heal()
        healed = time.monotonic()
        ids += [client.submit(f"a kite after {i}", k=50, seed=30 + i).id for i in range(3)]
        while (left := [i for i in ids if jobs.get(i).status not in ("succeeded", "failed")]) and (
            time.monotonic() - healed < AFTER_HEAL_S
        ):
            time.sleep(0.5)
        assert left == [], [(i, jobs.get(i).status) for i in left]
        print(f"every job ended {time.monotonic() - healed:.1f} s after the heal")
        assert [jobs.get(i).status for i in ids] == ["succeeded"] * len(ids), [jobs.get(i).error for i in ids]
        # The gateway answers, from inside the namespace, as soon as its own waits are over.
        deadline = healed + AFTER_HEAL_S
        while True:
            try:
                assert httpx.get(f"{gateway}/readyz", timeout=5).status_code == 200
                break
            except (httpx.HTTPError, AssertionError):
                assert time.monotonic() < deadline, "the gateway is still stuck"
                time.sleep(0.5)
        assert [w.pid for w in group] == pids and all(w.alive() for w in group)
        assert all(s.poll() is None for s in services)
    finally:
        for s in services:
            s.terminate()
        group.stop(timeout=20)
        for s in services:
            s.wait(10)
        logs.close()

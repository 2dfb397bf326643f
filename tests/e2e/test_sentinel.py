"""Redis under Sentinel: a master, its replica and a Sentinel, on ports of this test's own. The broker and the
control plane (live tau, leases, rate limits, metrics) use a ``sentinel://`` URL; the master is killed with
SIGKILL under busy workers, the Sentinel promotes the replica, and every worker keeps its pid while every job ends
succeeded with one final image and its webhook (what the dead master had not yet replicated, the sweeper sends
again)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import redis

from adq.tasks import client
from tests.e2e.test_broker_restart import FAST, Receiver, _all_final, receiver  # noqa: F401  (a fixture)
from tests.e2e.test_crash import objects_of
from tests.helpers import configured, free_port

MASTER = "adq-master"


def _redis(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(["redis-server", *args], stdout=subprocess.DEVNULL)


def _wait(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if value := check():
                return value
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


class Sentinelled:
    """redis-server as master and replica, and one Sentinel that watches them (quorum 1: it alone decides)."""

    def __init__(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        self.ports = [free_port(), free_port()]
        self.sentinel_port = free_port()
        base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.servers = [_redis(["--port", str(self.ports[0]), *base])]
        self.servers.append(_redis(["--port", str(self.ports[1]), "--replicaof", "127.0.0.1", str(self.ports[0])]))
        conf = folder / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.ports[0]} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 10000\n"
        )
        self.sentinel = _redis([str(conf), "--sentinel"])
        replica = redis.Redis(port=self.ports[1])
        _wait(lambda: replica.info("replication").get("master_link_status") == "up", "the replica never synced")
        _wait(lambda: self.master_port() == self.ports[0], "the Sentinel never saw the master")
        # A Sentinel learns the replicas from the master's INFO (every 10 s): a master killed before it knows one
        # has none to promote
        watcher = redis.Redis(port=self.sentinel_port)
        _wait(lambda: watcher.sentinel_slaves(MASTER), "the Sentinel never found the replica", timeout=60)
        self.url = f"sentinel://127.0.0.1:{self.sentinel_port}/0"

    def master_port(self) -> int:
        return int(redis.Redis(port=self.sentinel_port).sentinel_get_master_addr_by_name(MASTER)[1])

    def stop(self) -> None:
        for proc in [*self.servers, self.sentinel]:
            proc.kill()
            proc.wait(10)


@pytest.fixture()
def sentinelled(tmp_path):
    own = Sentinelled(tmp_path / "sentinel")
    yield own
    own.stop()


def test_a_failover_under_load_loses_no_job_and_ends_no_worker(sentinelled, system, receiver):  # noqa: F811
    # sentinelled first: torn down after the workers, which stop at once while their broker is still there
    env = FAST | {
        "ADQ_BROKER_URL": sentinelled.url,
        "ADQ_CONTROL_REDIS_URL": sentinelled.url,
        "ADQ_RATE_LIMIT_STORAGE_URL": sentinelled.url,
        "ADQ_SENTINEL_MASTER": MASTER,
    }
    group = system.workers("student", "teacher", "webhooks", **env)
    pids = {w.pool: w.pid for w in group}
    with configured(**env):
        ids = [client.submit(f"a glass lighthouse {i}", k=50, seed=i, webhook_url=receiver).id for i in range(12)]
        time.sleep(1.0)  # delivered, unacked, running
        sentinelled.servers[0].send_signal(signal.SIGKILL)
        _wait(lambda: sentinelled.master_port() == sentinelled.ports[1], "the Sentinel never promoted the replica")
        ids += [client.submit(f"a kite after {i}", k=100, seed=900 + i, webhook_url=receiver).id for i in range(4)]
        rows = _all_final(ids, timeout=240)
    assert [r.status for r in rows] == ["succeeded"] * len(ids), [(r.id, r.error) for r in rows]
    for r in rows:
        assert objects_of(r.id) == (["final.png", "student.png"] if r.teacher_used else ["student.png"]), r.id
    assert {r.webhook_delivered for r in rows} <= set(Receiver.event_ids)
    for w in group:  # the same processes, now on the promoted master
        assert w.alive() and w.pid == pids[w.pool], w.exit_report()
        assert "Unrecoverable error" not in w.log_path.read_text()
    assert redis.Redis(port=sentinelled.ports[1]).info("replication")["role"] == "master"

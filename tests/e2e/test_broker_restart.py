"""Workers outlive their broker: Redis restarted and killed with SIGKILL, several times, under busy workers of
every pool (student, teacher, webhooks), on the broker settings we ship for production (``appendonly yes``,
``appendfsync everysec``: a SIGKILL loses up to a second of writes). Every process keeps its pid and goes on
consuming; every job ends succeeded with its webhook delivered, the sweeper finding whatever the broker lost.

The Redis here is this test's own, on a port of its own, so killing it touches nothing else."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import redis

from adq.cli import main as adq
from adq.jobs.db import jobs
from adq.tasks import client
from adq.tasks.sweeper import sweep_once
from tests.helpers import configured, free_port

DISRUPTIONS = ("restart", "kill", "restart", "kill")
PER_ROUND = 6
# Short waits, so what a broker crash strands is found in seconds: the sweeper counts an unacked message lost once
# it is older than both ADQ_RETRY_BACKOFF_MAX_S and its own wait.
FAST = {
    "ADQ_RETRY_BACKOFF_S": "0.2",
    "ADQ_RETRY_BACKOFF_MAX_S": "2",
    "ADQ_UNACKED_RESTORE_INTERVAL_S": "1",
    "ADQ_LIVENESS_INTERVAL_S": "1",
    "ADQ_WEBHOOK_SECRET": "hook-secret",
    "ADQ_WEBHOOK_ALLOW_PRIVATE": "true",
}
SWEEP_AFTER_S = 5


class OwnRedis:
    """redis-server as production runs it, on a free port, with its append-only file in a folder of its own."""

    def __init__(self, folder):
        self.port, self.folder = free_port(), folder
        folder.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
            + ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self, sig: int) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(20)


class Receiver(BaseHTTPRequestHandler):
    event_ids: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.event_ids.append(self.headers["webhook-id"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def broker(tmp_path):
    own = OwnRedis(tmp_path / "redis")
    yield own
    own.stop(signal.SIGKILL)


@pytest.fixture()
def receiver():
    Receiver.event_ids = []
    server = HTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def _all_final(ids: list[str], timeout: float) -> list:
    """Wait for every job to end, sweeping as `adq sweep --loop` would meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [jobs.get(i) for i in ids]
        owed = [r for r in rows if r.status not in ("succeeded", "failed") or r.webhook_pending]
        if not owed:
            return rows
        assert time.monotonic() < deadline, [(r.id, r.status, r.webhook_pending) for r in owed]
        sweep_once(older_than_s=SWEEP_AFTER_S)
        time.sleep(1.0)


def test_workers_of_every_pool_outlive_redis_restarts_and_kills(system, broker, receiver, tmp_path):
    env = FAST | {"ADQ_BROKER_URL": broker.url}
    group = system.workers("student", "teacher", "webhooks", **env)
    pids = {w.pool: w.pid for w in group}
    ids: list[str] = []
    with configured(**env):
        for n, how in enumerate(DISRUPTIONS):
            ids += [
                client.submit(f"a paper lantern {n}-{i}", k=50, seed=100 * n + i, webhook_url=receiver).id
                for i in range(PER_ROUND)
            ]
            time.sleep(0.5)  # the workers are busy with them: delivered, unacked, running
            broker.stop(signal.SIGTERM if how == "restart" else signal.SIGKILL)
            time.sleep(1.0)
            if n == len(DISRUPTIONS) - 1:  # a worker without its broker consumes nothing: its probe says so
                time.sleep(2.5)
                assert [adq(["alive", pool, "--max-age", "2"]) for pool in pids] == [1, 1, 1]
            broker.start()
        for w in group:  # nobody died: the same processes, not restarted ones
            assert w.alive() and w.pid == pids[w.pool], w.exit_report()
        # Still consuming after the last disruption: new jobs go through every pool.
        ids += [client.submit(f"a kite after {i}", k=100, seed=900 + i, webhook_url=receiver).id for i in range(3)]
        rows = _all_final(ids, timeout=180)
        assert [r.status for r in rows] == ["succeeded"] * len(ids), [(r.id, r.error) for r in rows]
        assert all(r.student_attempts == 1 for r in rows), [(r.id, r.student_attempts) for r in rows]
        assert {r.webhook_delivered for r in rows} <= set(Receiver.event_ids)  # each job's webhook arrived
        for pool in pids:
            assert adq(["alive", pool, "--max-age", "5"]) == 0
    for w in group:
        assert w.alive() and w.pid == pids[w.pool]
        assert "Unrecoverable error" not in w.log_path.read_text()

"""The system as deployed: real `adq worker` processes on Redis (or RabbitMQ), PostgreSQL and an S3 HTTP server."""

from __future__ import annotations

import os

import pytest

from adq.workers.processes import WorkerGroup, WorkerProcess
from tests.helpers import configured


@pytest.fixture()
def system(request, redis_url, pg_url, s3_endpoint, s3_storage_url, tmp_path):
    """Settings for workers and for this process; yields a factory that starts worker processes. Parametrised
    indirectly with "amqp", the jobs go through RabbitMQ (quorum queues, a virtual host of the test's own), and
    Redis carries only the control plane, as docs/brokers.md deploys it; the default is Redis for both."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    on = getattr(request, "param", "redis")
    broker = request.getfixturevalue("amqp_url") if on == "amqp" else redis_url
    env = {
        "ADQ_BROKER_URL": broker,
        "ADQ_CONTROL_REDIS_URL": redis_url,
        "ADQ_RATE_LIMIT_STORAGE_URL": redis_url,
        "ADQ_DATABASE_URL": pg_url,
        "ADQ_STORAGE_URL": s3_storage_url,
        "ADQ_S3_ENDPOINT_URL": s3_endpoint,
        "ADQ_HOME": str(tmp_path / "home"),
        "ADQ_PRESET": "tiny",
        "ADQ_TORCH_THREADS": "1",
        # Workers report ready while they warm, as before warming waited: dozens of starts a run would each wait
        # for their models (tests/e2e/test_routing.py covers the default, warmed before ready)
        "ADQ_WARM_UP": "background",
        "ADQ_UNACKED_RESTORE_INTERVAL_S": "1",
    }
    started = []

    class System:
        def __init__(self):
            self.env = env
            self.broker = on
            self.log_dir = tmp_path / "logs"

        def worker(self, pool: str, name: str | None = None, args: list[str] | None = None, **extra_env):
            return self.workers(pool, name=name, args=args, **extra_env)[0]

        def workers(self, *pools: str, name: str | None = None, args: list[str] | None = None, **extra_env):
            """Start the pools' workers together and wait until all are ready: on two cores, in about half the
            time of one after another (each start is mostly imports)."""
            if name is not None and len(pools) > 1:  # one name for two workers: one log file, one hostname
                raise ValueError(f"name={name!r} names one worker; start {pools} without it")
            group = [
                WorkerProcess(p, self.log_dir, env={**os.environ, **env, **extra_env}, name=name, extra_args=args)
                for p in pools
            ]
            started.extend(group)
            WorkerGroup(group).wait_ready()
            return group

    with configured(**env):
        yield System()
        WorkerGroup(started).stop(timeout=30)

"""`adq bench overhead`: what the queue system costs per job, beside raw Celery on the same broker, in one run.

The "null" preset's models cost nothing, so jobs/s measures claims, database writes, storage writes and message
hops. The baseline is a worker of the same configuration (prefork, acks_late, prefetch 1) running no-op tasks.
Needs a Redis broker; ``--rabbitmq URL`` measures both again on RabbitMQ (quorum queues), in the same run, with
the control plane left on the Redis. No-op completion is read from the broker: Redis's queue and unacked lengths;
RabbitMQ's ready count (a passive declare), which leaves out the one message a prefetch of 1 has in flight."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from adq.core.config import get_settings
from adq.core.constants import NOOP_TASK, REDIS_UNACKED_KEY, STUDENT_QUEUE
from adq.core.errors import InputError
from adq.tasks import client

SUBMITTERS = 4


def write_json(out: str | None, result: dict) -> None:
    """A benchmark's --json FILE."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=1) + "\n")


def _wait_all(ids: list[str], timeout: float, check=None) -> list:
    deadline = time.monotonic() + timeout
    return [client.wait(i, timeout=max(0.1, deadline - time.monotonic()), poll_s=0.01, check=check) for i in ids]


def _system_rate(n_jobs: int, log_dir: Path) -> dict:
    from adq.workers.processes import Restarts, WorkerGroup, WorkerProcess

    env = {**os.environ, "ADQ_PRESET": "null"}
    workers = WorkerGroup(
        (WorkerProcess(pool, log_dir, env=env, name=f"bench-{pool}") for pool in ("student", "teacher")),
        restarts=Restarts(),
    )
    try:
        workers.wait_ready()
        _wait_all([client.submit(f"warm-up {i}", preset="null", seed=i).id for i in range(20)], 120, workers.check)
        t0 = time.perf_counter()
        # Submitted from SUBMITTERS threads, as a gateway's concurrent requests would: one serial submitter
        # (about 10 ms of database and broker round trips per job) would bound the rate by itself.
        with ThreadPoolExecutor(SUBMITTERS) as pool:
            ids = list(
                pool.map(
                    lambda i: client.submit(f"bench prompt {i}", preset="null", k=50, seed=1000 + i).id, range(n_jobs)
                )
            )
        views = _wait_all(ids, 600, workers.check)
        elapsed = time.perf_counter() - t0
    finally:
        workers.stop()
    bad = [v for v in views if v.status != "succeeded"]
    if bad:
        raise RuntimeError(f"{len(bad)} benchmark jobs did not succeed: {bad[0].error}")
    used = sum(bool(v.teacher_used) for v in views)
    return {
        "jobs": n_jobs,
        "seconds": elapsed,
        "jobs_per_s": n_jobs / elapsed,
        "teacher_fraction": used / n_jobs,
        "tasks_per_s": (n_jobs + used) / elapsed,
    }


def _drained():
    """A check that every no-op task sent has been taken (and, on Redis, acked)."""
    s = get_settings()
    if s.broker_kind == "amqp":
        from adq.tasks.broker import amqp_depths

        return lambda: amqp_depths([STUDENT_QUEUE])[STUDENT_QUEUE] == 0
    import redis

    r = redis.Redis.from_url(s.effective_broker_url)
    return lambda: r.llen(STUDENT_QUEUE) == 0 and r.hlen(REDIS_UNACKED_KEY) == 0


def _noop_rate(n_tasks: int, log_dir: Path) -> dict:
    from kombu import pools

    from adq.tasks.app import app
    from adq.workers.processes import WorkerProcess

    worker = WorkerProcess("student", log_dir, env={**os.environ, "ADQ_PRESET": "null"}, name="bench-noop")
    drained = _drained()
    try:
        worker.wait_ready()

        def run(n: int) -> float:
            t0 = time.perf_counter()
            # A producer from kombu's pools, as adq.tasks.enqueue takes one: Celery's own cached producer pool would
            # outlive a later change of settings (which resets kombu's pools) closed, in a process that goes on.
            with pools.producers[app.connection_for_write()].acquire(block=True) as producer:
                for _ in range(n):
                    app.send_task(NOOP_TASK, queue=STUDENT_QUEUE, producer=producer)
            while not drained():
                time.sleep(0.005)
            return time.perf_counter() - t0

        run(50)
        elapsed = run(n_tasks)
    finally:
        worker.stop()
    return {"tasks": n_tasks, "seconds": elapsed, "tasks_per_s": n_tasks / elapsed}


@contextmanager
def _on_rabbitmq(url: str):
    """This process and the workers it starts send jobs through RabbitMQ; the control plane stays on the Redis."""
    from adq import context
    from adq.tasks.app import configure

    s = get_settings()
    redis_url = s.effective_control_redis_url or s.effective_broker_url
    env = {"ADQ_BROKER_URL": url, "ADQ_CONTROL_REDIS_URL": redis_url}
    env["ADQ_RATE_LIMIT_STORAGE_URL"] = s.rate_limit_storage_url or redis_url
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    context.reset()
    configure()
    try:
        if get_settings().broker_kind != "amqp":
            raise InputError(f"--rabbitmq {url!r} must be an amqp:// URL")
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        context.reset()
        configure()


def _measure(n_jobs: int, n_noop: int, log_dir: Path) -> dict:
    system = _system_rate(n_jobs, log_dir)
    noop = _noop_rate(n_noop, log_dir)
    broker = get_settings().effective_broker_url.split("@")[-1]
    return {"broker": broker, "system": system, "raw_celery": noop, "ratio": system["jobs_per_s"] / noop["tasks_per_s"]}


def _report(name: str, m: dict) -> None:
    system, noop = m["system"], m["raw_celery"]
    print(
        f"{name:8} whole system (null models): {system['jobs_per_s']:8.1f} jobs/s  "
        f"({system['tasks_per_s']:.1f} stage tasks/s, teacher fraction {system['teacher_fraction']:.2f})"
    )
    print(f"{name:8} raw Celery no-op tasks:     {noop['tasks_per_s']:8.1f} tasks/s")
    print(f"{name:8} ratio jobs/s : no-op tasks/s = {m['ratio']:.3f}")


def decide_cost(n: int = 2000, owners: int = 1) -> dict:
    """What the control plane adds to one job's decision: record the score in the live distribution, read the
    controller's published value, take live tau (with the flushes to the database every ADQ_LIVE_FLUSH_S).
    ``owners``: the decisions go round the API keys in turn, each with its own live sketch."""
    import random

    import numpy as np

    from adq.control.decision import Decider
    from adq.jobs import records
    from adq.method.params import JobParams

    row, _ = records.record("decide cost", preset="null", k=50, seed=1)
    params, decider, rng = JobParams.of(row), Decider("bench-decide"), random.Random(0)
    times = []
    for i in range(n):
        owner = None if owners == 1 else f"key-{i % owners}"
        t0 = time.perf_counter()
        decider.decide(params, row.calibration_id, rng.random(), owner=owner)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {
        "decisions": n,
        "owners": owners,
        "median_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
    }


def overhead(n_jobs: int = 300, n_noop: int | None = None, out: str | None = None, rabbitmq: str = "") -> dict:
    from adq.jobs.db.migrate import upgrade

    if get_settings().broker_kind != "redis":
        raise InputError("the overhead benchmark needs a Redis broker: set ADQ_BROKER_URL=redis://...")
    if n_jobs < 1:
        raise InputError(f"--jobs={n_jobs} must be at least 1")
    upgrade()
    log_dir = get_settings().home_dir / "bench"
    n_noop = n_noop or max(1000, n_jobs)
    redis_run = _measure(n_jobs, n_noop, log_dir)
    result = {
        "broker": redis_run["broker"],
        "database": get_settings().effective_database_url.split("://")[0],
        "storage": get_settings().effective_storage_url.split("://")[0],
        "system": redis_run["system"],
        "raw_celery": redis_run["raw_celery"],
        "jobs_per_s_over_noop_tasks_per_s": redis_run["ratio"],
    }
    _report("redis", redis_run)
    if rabbitmq:
        with _on_rabbitmq(rabbitmq):
            result["rabbitmq"] = _measure(n_jobs, n_noop, log_dir)
        _report("rabbitmq", result["rabbitmq"])
        print(
            f"RabbitMQ : Redis = {result['rabbitmq']['system']['jobs_per_s'] / redis_run['system']['jobs_per_s']:.3f} "
            f"(jobs), {result['rabbitmq']['raw_celery']['tasks_per_s'] / redis_run['raw_celery']['tasks_per_s']:.3f} "
            "(raw Celery)"
        )
    # the pooled window merges every key's sketch: what many tenants cost a decision
    result |= {"decide": decide_cost(), "decide_by_owners": [decide_cost(owners=m) for m in (10, 100)]}
    d = result["decide"]
    print(
        f"deciding (live tau, controller value): median {d['median_ms']:.3f} ms, p99 {d['p99_ms']:.3f} ms, mean "
        f"{d['mean_ms']:.3f} ms per job over {d['decisions']} decisions"
    )
    for d in result["decide_by_owners"]:
        print(f"  with {d['owners']} API keys: median {d['median_ms']:.3f} ms, p99 {d['p99_ms']:.3f} ms")
    write_json(out, result)
    return result

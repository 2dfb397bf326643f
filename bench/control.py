"""`adq bench control`: the control plane on the real system, side by side in one run (a benchmark, not a test).

Real Redis, PostgreSQL and worker processes, with the null preset's fixed-cost models (ADQ_NULL_*_MS):
- (a) a load step above teacher capacity: teacher-routed jobs' p95 under ``fixed`` against ``slo`` (a controller
  running, leader-elected as in production);
- (b) a drifting prompt mix (prompts that score lower than the calibration): the teacher fraction with live tau
  against calibration tau."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from adq.control import published
from adq.control.live import forget
from adq.core.config import get_settings
from adq.core.errors import InputError
from adq.core.redisconn import redis_client
from adq.tasks import client
from bench.overhead import write_json


def _seconds(view) -> float:
    from datetime import datetime

    t = view.times
    return (datetime.fromisoformat(t["finished_at"]) - datetime.fromisoformat(t["created_at"])).total_seconds()


def _system(env: dict, log_dir: Path, controller: bool):
    from adq.workers.processes import Restarts, WorkerGroup, WorkerProcess

    workers = WorkerGroup(
        (WorkerProcess(pool, log_dir, env=env, name=f"bench-control-{pool}") for pool in ("student", "teacher")),
        restarts=Restarts(),
    )
    ctl = None
    if controller:
        log = open(log_dir / "bench-control-controller.log", "ab")
        ctl = subprocess.Popen(
            [sys.executable, "-m", "adq.cli", "-v", "controller", "--interval", "0.5"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    workers.wait_ready()
    return workers, ctl


def _stop(workers, ctl) -> None:
    if ctl is not None:
        os.killpg(ctl.pid, signal.SIGTERM)
        ctl.wait(30)
        redis_client().delete(published.KEY)  # its last value would steer the next case for a while
    workers.stop()


def _paced(prompt: str, rate: float, seconds: float, k: int, seed0: int) -> list[str]:
    ids, t0, i = [], time.monotonic(), 0
    while (now := time.monotonic() - t0) < seconds:
        if i < now * rate:
            ids.append(client.submit(f"{prompt} {i}", preset="null", k=k, seed=seed0 + i).id)
            i += 1
        else:
            time.sleep(0.002)
    return ids


def load_step(policy: str, *, rate: float, seconds: float, teacher_ms: float, target_s: float, log_dir: Path) -> dict:
    env = {
        **os.environ,
        "ADQ_PRESET": "null",
        "ADQ_NULL_TEACHER_MS": str(teacher_ms),
        "ADQ_NULL_STUDENT_MS": "5",
        "ADQ_CONTROL_POLICY": policy,
        "ADQ_TEACHER_P95_TARGET_S": str(target_s),
        "ADQ_TEACHER_TIME_S": str(teacher_ms / 1000),
    }
    redis_client().delete(published.KEY)
    forget()  # each case starts from an empty live window
    workers, ctl = _system(env, log_dir, controller=policy != "fixed")
    try:
        client.wait(client.submit("warm-up", preset="null", k=100, seed=1).id, timeout=60, check=workers.check)
        time.sleep(2.0)  # the controller's first solve
        ids = _paced(f"load step {policy}", rate, seconds, 50, 10_000)
        views = [client.wait(i, timeout=600, poll_s=0.05, check=workers.check) for i in ids]
    finally:
        _stop(workers, ctl)
    teacher = np.array([_seconds(v) for v in views if v.teacher_used])
    return {
        "case": "load step",
        "policy": policy,
        "jobs": len(views),
        "teacher_fraction": len(teacher) / len(views),
        "mean_effective_k": float(np.mean([v.effective_k for v in views])),
        "teacher_p50_s": float(np.percentile(teacher, 50)),
        "teacher_p95_s": float(np.percentile(teacher, 95)),
        "over_target": float(np.mean(teacher > target_s)),
        "target_s": target_s,
    }


def drift(tau_mode: str, *, jobs: int, log_dir: Path) -> dict:
    env = {**os.environ, "ADQ_PRESET": "null", "ADQ_TAU_MODE": tau_mode}
    forget()
    workers, ctl = _system(env, log_dir, controller=False)
    try:
        ids = [
            client.submit(f"drift: prompt {tau_mode} {i}", preset="null", k=50, seed=50_000 + i).id for i in range(jobs)
        ]
        views = [client.wait(i, timeout=600, poll_s=0.05, check=workers.check) for i in ids]
    finally:
        _stop(workers, ctl)
    views.sort(key=lambda v: v.times["student_finished_at"])
    after = views[get_settings().live_tau_min_scores :]  # after live tau's warm-up
    return {
        "case": "drift",
        "tau_mode": tau_mode,
        "jobs": len(after),
        "teacher_fraction": float(np.mean([v.teacher_used for v in after])),
        "sources": sorted({v.tau_source for v in after}),
    }


def run(
    out: str | None = None,
    *,
    rate: float = 14.0,
    seconds: float = 20.0,
    teacher_ms: float = 200.0,
    target_s: float = 2.0,
    drift_jobs: int = 300,
) -> dict:
    from adq.jobs.db.migrate import upgrade

    if get_settings().broker_kind != "redis":
        raise InputError("the control benchmark needs a Redis broker (the controller's lock): set ADQ_BROKER_URL")
    upgrade()
    log_dir = get_settings().home_dir / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    a = [
        load_step(p, rate=rate, seconds=seconds, teacher_ms=teacher_ms, target_s=target_s, log_dir=log_dir)
        for p in ("fixed", "slo")
    ]
    b = [drift(m, jobs=drift_jobs, log_dir=log_dir) for m in ("calibration", "live")]
    print(
        f"(a) load step: {rate:g} jobs/s for {seconds:g} s at k=50 against one teacher of {teacher_ms:g} ms "
        f"(capacity {1000 / teacher_ms:g} teacher jobs/s); p95 target {target_s:g} s"
    )
    print("| policy | jobs | teacher fraction | mean effective k | teacher p50 s | teacher p95 s | over target |")
    print("|---|---|---|---|---|---|---|")
    for r in a:
        print(
            f"| {r['policy']} | {r['jobs']} | {r['teacher_fraction']:.3f} | {r['mean_effective_k']:.1f} | "
            f"{r['teacher_p50_s']:.2f} | {r['teacher_p95_s']:.2f} | {100 * r['over_target']:.1f} % |"
        )
    print(f"\n(b) drift: {drift_jobs} jobs at k=50 whose prompts score half as high as the calibration's")
    print("| tau mode | jobs after warm-up | teacher fraction | tau source |")
    print("|---|---|---|---|")
    for r in b:
        print(f"| {r['tau_mode']} | {r['jobs']} | {r['teacher_fraction']:.3f} | {', '.join(r['sources'])} |")
    result = {"load_step": a, "drift": b}
    write_json(out, result)
    return result

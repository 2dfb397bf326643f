"""The demo's start-up on the embedded broker, and what a supervising command does when a worker dies (issue 25).

Both use embedded defaults (filesystem broker, SQLite, file storage) and the null preset, so the cost is Celery's
start-up and nothing else."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from adq.core.errors import WorkerDied
from adq.tasks.fs_transport import read_table
from adq.workers.demo import POOLS
from adq.workers.processes import Restarts, WorkerGroup, WorkerProcess
from tests.helpers import configured

STARTS = 12  # the race this guards against broke about one start in six (2 of 11 demos)


def _embedded_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADQ_")}
    env |= {"ADQ_HOME": str(home), "ADQ_TORCH_THREADS": "1", "ADQ_PRESET": "null", "ADQ_WARM_UP": "background"}
    return env | extra  # start-up races are tested here, not the warm-up (tests/e2e/test_routing.py)


def test_the_demo_pools_start_together_on_fresh_embedded_homes(tmp_path):
    for i in range(STARTS):
        home = tmp_path / f"home-{i}"
        group = WorkerGroup(WorkerProcess(pool, home / "logs", env=_embedded_env(home)) for pool in POOLS)
        try:
            group.wait_ready(timeout=60)  # raises WorkerDied, with the log's end, if either one exits
            pidbox = read_table(home / "broker" / "control" / "celery.pidbox.exchange")
            assert sorted(q.queue.split("@")[0] for q in pidbox) == sorted(POOLS), (i, pidbox)
            group.check()
        finally:
            for w in group:
                w.kill()  # a warm stop would only add seconds; start-up is what is tested


def test_a_supervised_group_restarts_a_worker_that_dies_and_reports_it(tmp_path, capsys):
    home = tmp_path / "home"
    env = _embedded_env(home)
    with configured(ADQ_RESTART_LIMIT="1", ADQ_RESTART_WINDOW_S="600"):
        group = WorkerGroup([WorkerProcess("teacher", home / "logs", env=env)], restarts=Restarts())
    (worker,) = group
    try:
        group.wait_ready(timeout=60)
        first = worker.pid
        os.killpg(first, signal.SIGKILL)
        worker.proc.wait()
        group.check()  # reports the exit and schedules the restart (0.5 s)
        assert not worker.alive() and worker.restart_at is not None
        group.wait_ready(timeout=60)  # polls check(), which restarts it when the backoff is over
        assert worker.alive() and worker.pid != first
        err = capsys.readouterr().err
        assert f"the teacher worker (pid {first}) exited with -9" in err and "the last lines of" in err
        assert f"restarted the teacher worker (pid {worker.pid})" in err
        os.killpg(worker.pid, signal.SIGKILL)  # a second crash in the window: past ADQ_RESTART_LIMIT=1
        worker.proc.wait()
        with pytest.raises(WorkerDied, match=r"crashed 2 times within 600 s: not restarted"):
            group.check()
    finally:
        worker.kill()


def test_the_demo_stops_and_names_a_worker_that_dies_while_it_waits(tmp_path):
    home = tmp_path / "home"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\na blue square\n")
    # Every job goes to a teacher that takes a minute per image, so the demo is waiting when the teacher dies.
    # ADQ_RESTART_LIMIT=0: the first exit is a crash loop, so the demo gives up at once (restarts: the test above).
    env = _embedded_env(home, ADQ_NULL_TEACHER_MS="60000", ADQ_RESTART_LIMIT="0")
    demo = subprocess.Popen(
        [sys.executable, "-m", "adq.cli", "demo", "--preset", "null", "--k", "100", "--prompts", str(prompts)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        teacher_log = home / "logs" / "teacher.log"
        deadline = time.monotonic() + 120
        while not (teacher_log.exists() and "Task adq.teacher" in teacher_log.read_text()):
            assert demo.poll() is None and time.monotonic() < deadline, "the teacher never took a job"
            time.sleep(0.2)
        workers = {p.cmdline()[4]: p for p in psutil.Process(demo.pid).children() if "worker" in p.cmdline()}
        teacher, student = workers["teacher"], workers["student"]
        os.killpg(teacher.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        out, err = demo.communicate(timeout=60)
        noticed_s = time.monotonic() - killed_at
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode != 0
    assert re.search(rf"WorkerDied: the teacher worker \(pid {teacher.pid}\) exited with -9", err), err[-2000:]
    assert "the last lines of" in err and "teacher.log" in err
    assert noticed_s < 30, noticed_s  # seconds (the student's warm stop included), never the 600 s job timeout
    assert not student.is_running(), "the demo left the student worker running"

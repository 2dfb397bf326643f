"""`adq up` on embedded defaults: one process tree with the gateway and both pools; the console URL carries a
local operator key; Ctrl-C stops everything; a child that dies is named and the rest are stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil

from tests.helpers import free_port


def _start(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADQ_")}
    env |= {"ADQ_HOME": str(tmp_path / "home"), "ADQ_TORCH_THREADS": "1", "ADQ_PRESET": "null", **extra}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "adq.cli", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    # The children's logs come through these pipes: read them as they come, or a full pipe blocks `adq up` itself.
    proc.lines = {"out": [], "err": []}
    for name, pipe in (("out", proc.stdout), ("err", proc.stderr)):
        threading.Thread(target=lambda n=name, p=pipe: proc.lines[n].extend(p), daemon=True).start()
    match = re.match(rf"adq up: console at (http://127\.0\.0\.1:{port}/console)#key=(\S+)$", url)
    assert match, url
    page, key = match.groups()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/jobs", headers={"Authorization": f"Bearer {key}"}).is_success:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    children = {" ".join(c.cmdline()[3:5]): c for c in psutil.Process(proc.pid).children()}
    return proc, page, key, port, children


def test_up_serves_the_console_and_stops_cleanly_on_ctrl_c(tmp_path):
    proc, page, key, port, children = _start(tmp_path)
    try:
        # On embedded defaults there is no Redis, so no controller: the gateway and the two pools.
        assert set(children) == {"api --host", "worker student", "worker teacher"}, children
        assert httpx.get(page).status_code == 200 and "adq console" in httpx.get(page).text
        assert httpx.get(f"http://127.0.0.1:{port}/v1/jobs").status_code == 401  # the key is needed
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert not [c for c in children.values() if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def test_up_restarts_a_child_that_dies_and_it_serves_again(tmp_path):
    proc, page, key, port, _ = _start(tmp_path)
    try:
        (teacher,) = [c for c in psutil.Process(proc.pid).children() if "teacher" in c.cmdline()]
        os.killpg(teacher.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not any("adq up: restarted teacher" in line for line in proc.lines["err"]):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(proc.lines["err"])[-2000:]
            time.sleep(0.2)
        (again,) = [c for c in psutil.Process(proc.pid).children() if "teacher" in c.cmdline()]
        assert again.pid != teacher.pid
        err = "".join(proc.lines["err"])
        assert f"teacher (pid {teacher.pid}) exited with -9; its last lines" in err
        # The restarted teacher consumes: a job that must reach it (k=100) succeeds.
        auth = {"Authorization": f"Bearer {key}"}
        job = httpx.post(f"http://127.0.0.1:{port}/v1/jobs", json={"prompt": "a kite", "k": 100}, headers=auth).json()
        while (view := httpx.get(f"http://127.0.0.1:{port}/v1/jobs/{job['id']}", headers=auth).json())[
            "status"
        ] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline + 60, view
            time.sleep(0.2)
        assert view["status"] == "succeeded" and view["teacher_used"], view
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def test_up_names_a_child_in_a_crash_loop_and_stops_the_rest(tmp_path):
    proc, page, key, port, _ = _start(tmp_path, ADQ_RESTART_LIMIT="0")
    try:
        workers = [c for c in psutil.Process(proc.pid).children() if "teacher" in c.cmdline()]
        others = [c for c in psutil.Process(proc.pid).children() if "teacher" not in c.cmdline()]
        os.killpg(workers[0].pid, signal.SIGKILL)
        proc.wait(60)
        time.sleep(0.5)  # the reader threads take the pipes' last lines
        err = "".join(proc.lines["err"])
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert re.search(r"WorkerDied: teacher \(pid \d+\) exited with -9; its last lines", err), err[-2000:]
    assert "(crashed 1 times within 60 s: not restarted)" in err
    assert not [c for c in others if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

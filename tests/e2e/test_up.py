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


def _start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADQ_")}
    env |= {"ADQ_HOME": str(tmp_path / "home"), "ADQ_TORCH_THREADS": "1", "ADQ_PRESET": "null"}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "up", "--port", str(port)],
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


def test_up_names_a_child_that_dies_and_stops_the_rest(tmp_path):
    proc, page, key, port, _ = _start(tmp_path)
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
    assert "WorkerDied: teacher exited with -9" in err and "its last lines" in err
    assert not [c for c in others if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

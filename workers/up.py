"""`adq up`: the gateway, both worker pools and the controller in one foreground process tree, on whatever the
settings say (embedded defaults: no server). It prints the console's URL with a local operator key, streams every
child's log with a prefix and stops them all on Ctrl-C. A child that dies is named with its last lines and
restarted after a backoff; a crash loop (ADQ_RESTART_LIMIT within ADQ_RESTART_WINDOW_S) stops the rest."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque

from adq.core.config import get_settings
from adq.workers.processes import Restarts

TAIL = 15


class Child:
    """A child process whose output is printed line by line behind its name, and whose last lines are kept."""

    def __init__(self, name: str, args: list[str], env: dict):
        self.name, self.args, self.env, self.tail = name, args, env, deque(maxlen=TAIL)
        self.restart_at: float | None = None
        self._spawn()

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "adq.cli", *self.args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a stop takes the worker's pool children too
        )
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            print(f"{self.name:>10} | {line}", flush=True)

    def supervise(self, restarts: Restarts) -> None:
        """Report an exit and schedule a restart after the policy's backoff; restart when it is due. Raises
        WorkerDied on a crash loop."""
        if self.proc.poll() is None:
            return
        if self.restart_at is None:
            tail = "\n".join(self.tail) or "(no output)"
            report = f"{self.name} (pid {self.proc.pid}) exited with {self.proc.returncode}; its last lines:\n{tail}"
            delay = restarts.after_crash(self.name, report)
            print(f"adq up: {report}\nadq up: restarting {self.name} in {delay:g} s", file=sys.stderr, flush=True)
            self.restart_at = time.monotonic() + delay
        elif time.monotonic() >= self.restart_at:
            self._spawn()
            self.restart_at = None
            print(f"adq up: restarted {self.name} (pid {self.proc.pid})", file=sys.stderr, flush=True)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # Celery's warm shutdown; uvicorn's graceful one

    def wait_or_kill(self, deadline: float) -> None:
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def stop_all(children: list[Child], timeout: float = 30.0) -> None:
    """Every child stops at once, within one shared timeout: stopped one after another, three warm shutdowns
    would add up, and a child that hangs would hold up the others' stop."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        child.wait_or_kill(deadline)


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def plan(port: int, key: str | None) -> tuple[dict, list[tuple[str, list[str]]]]:
    """The children's environment and command lines."""
    env = dict(os.environ)
    if key is not None:  # no keys configured: a local operator key, so the console opens on every tenant's jobs
        env |= {"ADQ_API_KEYS": f"local:{key}", "ADQ_OPERATOR_KEYS": "local"}
    children = [
        ("gateway", ["api", "--host", "127.0.0.1", "--port", str(port)]),
        ("student", ["worker", "student"]),
        ("teacher", ["worker", "teacher"]),
    ]
    if get_settings().effective_control_redis_url:
        children.append(("controller", ["controller"]))
    return env, children


def run(port: int = 8000) -> int:
    from adq.jobs.db.migrate import upgrade
    from adq.tasks.app import ensure_broker_folders

    # SIGTERM (a service manager, `timeout`) stops the tree as Ctrl-C does: the children run in their own sessions,
    # so without this they would outlive us.
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C explicitly too: a process started in the background by a shell inherits SIGINT ignored, and Python
    # then leaves it ignored (seen in CI: the test's SIGINT did nothing).
    signal.signal(signal.SIGINT, _interrupt)
    upgrade()  # once, here, rather than raced by the children
    ensure_broker_folders()
    key = None if get_settings().api_keys else secrets.token_urlsafe(24)
    env, commands = plan(port, key)
    children = [Child(name, args, env) for name, args in commands]
    url = f"http://127.0.0.1:{port}/console" + (f"#key={key}" if key else "")
    print(f"adq up: console at {url}", flush=True)
    if len(children) == 3:
        print("adq up: no controller (it needs Redis); each job uses its own k", flush=True)
    print("adq up: Ctrl-C stops everything", flush=True)
    restarts = Restarts()
    try:
        while True:
            for child in children:
                child.supervise(restarts)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("adq up: stopping", flush=True)
        return 0
    finally:
        stop_all(children)

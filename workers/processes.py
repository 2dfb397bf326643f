"""Run worker pools as child processes (demo, benchmark, tests), watch them, restart one that exits unexpectedly,
and stop them with a warm shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from adq.core.errors import WorkerDied

LOG_TAIL_LINES = 15
FIRST_BACKOFF_S = 0.5


class Restarts:
    """When a supervisor restarts a child that exited: after a backoff that doubles with each crash in the window
    (0.5 s, 1 s, 2 s, ... up to ADQ_RESTART_BACKOFF_MAX_S), and never again once the child has crashed more than
    ADQ_RESTART_LIMIT times within ADQ_RESTART_WINDOW_S: systemd's StartLimitBurst and Kubernetes' CrashLoopBackOff.
    A crash loop then stops the supervisor, naming the child, rather than spinning for ever."""

    def __init__(self, limit: int | None = None, window_s: float | None = None, backoff_max_s: float | None = None):
        from adq.core.config import get_settings

        s = get_settings()
        self.limit = s.restart_limit if limit is None else limit
        self.window_s = window_s or s.restart_window_s
        self.backoff_max_s = backoff_max_s or s.restart_backoff_max_s
        self._crashes: dict[str, list[float]] = {}

    def after_crash(self, name: str, what: str) -> float:
        """Seconds to wait before restarting ``name``; raises WorkerDied, with ``what``, past the limit."""
        now = time.monotonic()
        recent = [t for t in self._crashes.get(name, []) if now - t < self.window_s] + [now]
        self._crashes[name] = recent
        if len(recent) > self.limit:
            raise WorkerDied(f"{what}\n(crashed {len(recent)} times within {self.window_s:g} s: not restarted)")
        return min(self.backoff_max_s, FIRST_BACKOFF_S * 2 ** (len(recent) - 1))


class WorkerProcess:
    def __init__(
        self,
        pool: str,
        log_dir: Path,
        env: dict | None = None,
        name: str | None = None,
        extra_args: list[str] | None = None,
        prefix: list[str] | None = None,
    ):
        """``prefix``: a command the worker runs under (``ip netns exec NS`` in the partition tests)."""
        self.pool, self.name, self.env = pool, name or pool, env
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.name}.log"
        self._log = open(self.log_path, "ab")
        self.cmd = [
            *(prefix or []),
            sys.executable,
            "-m",
            "adq.cli",
            "worker",
            pool,
            "--hostname",
            f"{self.name}@%h",
            *(extra_args or []),
        ]
        self._stopping = False
        self.restart_at: float | None = None  # set while a restart waits out its backoff
        self._spawn()

    def _spawn(self) -> None:
        self._ready_from = self.log_path.stat().st_size  # a restarted worker is ready when its new run says so
        # Own process group: stopping (or killing) the worker takes its pool children with it.
        self.proc = subprocess.Popen(
            self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )

    def respawn(self) -> None:
        self._spawn()
        self.restart_at = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def exit_report(self) -> str:
        return (
            f"the {self.name} worker (pid {self.pid}) exited with {self.proc.returncode}; "
            f"the last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def check(self) -> None:
        """Raise WorkerDied, naming the worker and the end of its log, if the process has exited."""
        if not self.alive():
            raise WorkerDied(self.exit_report())

    def ready(self) -> bool:
        if not self.alive():
            return False
        with open(self.log_path, "rb") as f:
            f.seek(self._ready_from)
            return b" ready." in f.read()

    def wait_ready(self, timeout: float = 90.0) -> None:
        WorkerGroup([self]).wait_ready(timeout)

    def request_stop(self) -> None:
        """SIGTERM is Celery's warm shutdown: finish the running task, then exit (``stop`` waits for it)."""
        if self.alive() and not self._stopping:
            self._stopping = True
            os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 60.0) -> int:
        if self.alive():
            self.request_stop()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole worker, parent and pool children: a crash, not a shutdown."""
        self._stopping = True  # by us: not a crash to restart
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()


class WorkerGroup:
    """The workers one command supervises. ``check`` is cheap (a waitpid each), so waits call it on every poll: a
    worker that exits is reported (its name and the end of its log) and restarted after a backoff; a crash loop
    ends the command within a poll, instead of a hang. ``restarts=None``: any exit ends it (start-up checks)."""

    def __init__(self, workers: Iterable[WorkerProcess], restarts: Restarts | None = None):
        self.workers = list(workers)
        self.restarts = restarts

    def __iter__(self):
        return iter(self.workers)

    def check(self) -> None:
        for w in self.workers:
            if w.alive() or w._stopping:
                continue
            if self.restarts is None:
                w.check()
            if w.restart_at is None:
                delay = self.restarts.after_crash(w.name, w.exit_report())
                print(f"adq: {w.exit_report()}\nadq: restarting the {w.name} worker in {delay:g} s", file=sys.stderr)
                w.restart_at = time.monotonic() + delay
            elif time.monotonic() >= w.restart_at:
                w.respawn()
                print(f"adq: restarted the {w.name} worker (pid {w.pid})", file=sys.stderr, flush=True)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(self.workers)
        while waiting:
            self.check()
            waiting = [w for w in waiting if not w.ready()]
            if waiting and time.monotonic() > deadline:
                names = ", ".join(w.name for w in waiting)
                raise TimeoutError(f"{names} not ready after {timeout} s; see {waiting[0].log_path}")
            if waiting:
                time.sleep(0.2)

    def stop(self, timeout: float = 60.0) -> None:
        # All at once: a warm shutdown waits for the event loop's next wake-up (a second or more), so one after
        # another would add those waits up.
        for w in self.workers:
            w.request_stop()
        for w in self.workers:
            w.stop(timeout)

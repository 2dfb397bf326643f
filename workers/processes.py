"""Run worker pools as child processes (demo, benchmark, tests), watch them, and stop them with a warm shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from shared.core.errors import WorkerDied

LOG_TAIL_LINES = 15


class WorkerProcess:
    def __init__(
        self,
        pool: str,
        log_dir: Path,
        env: dict | None = None,
        name: str | None = None,
        extra_args: list[str] | None = None,
    ):
        self.pool, self.name = pool, name or pool
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.name}.log"
        self._log = open(self.log_path, "ab")
        cmd = [
            sys.executable,
            "-m",
            "workers.cli",
            "worker",
            pool,
            "--hostname",
            f"{self.name}@%h",
            *(extra_args or []),
        ]
        # Own process group: stopping (or killing) the worker takes its pool children with it.
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._stopping = False

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

    def check(self) -> None:
        """Raise WorkerDied, naming the worker and the end of its log, if the process has exited."""
        if not self.alive():
            raise WorkerDied(
                f"the {self.name} worker (pid {self.pid}) exited with {self.proc.returncode}; "
                f"the last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def ready(self) -> bool:
        return b" ready." in self.log_path.read_bytes()

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
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()


class WorkerGroup:
    """The workers one command supervises. ``check`` is cheap (a waitpid each), so waits call it on every poll:
    a worker that dies ends the command within a poll, with its name and log, instead of a hang."""

    def __init__(self, workers: Iterable[WorkerProcess]):
        self.workers = list(workers)

    def __iter__(self):
        return iter(self.workers)

    def check(self) -> None:
        for w in self.workers:
            w.check()

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

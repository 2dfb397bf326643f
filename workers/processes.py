"""Run worker pools as child processes (demo, benchmark, tests) and stop them with a warm shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


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

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} worker exited with {self.proc.returncode}; see {self.log_path}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} worker not ready after {timeout} s; see {self.log_path}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM is Celery's warm shutdown: finish the running task, then exit."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
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

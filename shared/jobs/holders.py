"""Who holds a claim, and whether that holder is known to be gone.

A claim names its holder as ``<celery node>/<host>/<pid>``. Takeover of a running stage whose lease is still live
is allowed only when the holder is known to be gone: on this host, its process no longer runs (or is a zombie),
or it is this very process and no thread of it runs the job (``running_here``: a job runs on at most one thread
of a process, so a claim this process holds while it claims again belongs to a run that already ended). A holder
on another host is trusted until its lease runs out.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Claimant:
    """Who asks for a stage: its holder id, the fence its own earlier run still holds (a retry after an outage
    it could not report), and how to tell that the current holder is gone."""

    worker: str
    own_fence: int | None = None
    holder_gone: Callable[[str | None], bool] = lambda _holder: False


def holder_id(node: str | None) -> str:
    return f"{node or 'unknown'}/{socket.gethostname()}/{os.getpid()}"[:255]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that its parent has not reaped yet still answers signal 0
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_gone(holder: str | None) -> bool:
    if not holder:
        return False
    parts = holder.rsplit("/", 2)
    if len(parts) != 3 or parts[1] != socket.gethostname() or not parts[2].isdigit():
        return False
    pid = int(parts[2])
    return pid == os.getpid() or not _alive(pid)


_running: set[str] = set()
_running_lock = threading.Lock()


@contextmanager
def running_here(job_id: str) -> Iterator[bool]:
    """Run a job on this thread only if no other thread of this process runs it; yields whether it may. A second
    message for a job that a live thread of ours holds is a duplicate, and that thread will finish the job."""
    with _running_lock:
        mine = job_id not in _running
        _running.add(job_id)
    try:
        yield mine
    finally:
        if mine:
            with _running_lock:
                _running.discard(job_id)

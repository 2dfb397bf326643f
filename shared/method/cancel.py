"""Cancellation that frees the GPU: a model run checks, after every denoising step, whether its job was
cancelled, and stops there with ``Cancelled`` (carrying the steps it finished).

The check is installed on the thread that runs the model (the model lane's thread in the overlapped design) by
``watching``, around one job's call; a batch of several jobs is not watched, since stopping it would stop the
others too (student batching is off by default). The check is one primary-key read of the job's status."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from adq.core.errors import Cancelled

_local = threading.local()


@contextmanager
def watching(job_id: str, is_cancelled: Callable[[str], bool]) -> Iterator[None]:
    _local.watch = (job_id, is_cancelled)
    try:
        yield
    finally:
        _local.watch = None


def step_done(steps: int) -> None:
    """Called by the model adapters after each denoising step."""
    watch = getattr(_local, "watch", None)
    if watch is None:
        return
    job_id, is_cancelled = watch
    if is_cancelled(job_id):
        raise Cancelled(f"job {job_id} was cancelled after {steps} denoising steps", steps_done=steps)

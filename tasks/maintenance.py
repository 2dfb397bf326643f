"""Benchmark baseline and per-process set-up hooks."""

from __future__ import annotations

from celery.signals import worker_process_init

from shared.constants import NOOP_TASK
from tasks.app import app


@app.task(name=NOOP_TASK)
def noop() -> None:
    """Does nothing: the raw-Celery baseline of the overhead benchmark."""


@worker_process_init.connect
def _after_fork(**_kwargs) -> None:
    # Runs in each prefork child. Must stay fast (the parent kills children that take over 4 s here), so models
    # are not loaded here but on first use; only fork-unsafe clients inherited from the parent are dropped.
    from shared import storage
    from shared.db import session

    session.reset_after_fork()
    storage.reset()

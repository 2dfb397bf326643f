"""Benchmark baseline and per-process set-up hooks."""

from __future__ import annotations

import logging

from celery.signals import celeryd_after_setup, worker_init, worker_process_init

from adq.core.constants import NOOP_TASK
from adq.tasks.app import app

log = logging.getLogger(__name__)


@app.task(name=NOOP_TASK)
def noop() -> None:
    """Does nothing: the raw-Celery baseline of the overhead benchmark."""


@worker_process_init.connect
def _after_fork(**_kwargs) -> None:
    # Runs in each prefork child. Must stay fast (the parent kills children that take over 4 s here), so models
    # are not loaded here but on first use; the fork-unsafe clients inherited from the parent are let go of.
    from adq.core import process

    process.reset()


_pool: str | None = None
_presets: list[str] = []


def warm_on_start(pool: str, presets: list[str] | None = None) -> None:
    """Called by `adq worker POOL` before Celery starts: which pool's models, of which presets, to warm at start-up
    (none named: the default preset)."""
    global _pool, _presets
    _pool, _presets = pool, list(presets or [])


def served_pool() -> str | None:
    """The pool `adq worker` started this process for (None under a plain `celery worker`)."""
    return _pool


@worker_init.connect
def _declare(**_kwargs) -> None:
    # Before the consumer's delayed-delivery step binds every queue's exchange (RabbitMQ quorum queues)
    from adq.tasks import transports

    try:
        transports.declare(app)
    except Exception as exc:  # the broker is down: the consumer's own start waits for it and declares what it eats
        log.warning("could not declare the queues at start: %s: %s", type(exc).__name__, exc)


@worker_init.connect
def _warm(**_kwargs) -> None:
    # Before the consumer starts (so before the "ready" line and the liveness mark): the first job finds its
    # models loaded and run once.
    if _pool is not None:
        from adq import context
        from adq.core.config import get_settings

        context.warm(_pool, _presets or [get_settings().preset])


@celeryd_after_setup.connect
def _name_log_lines(sender=None, **_kwargs) -> None:
    # Every log line names its worker by the Celery node (adq.core.logs), as claims do.
    from adq.core import logs

    if sender:
        logs.set_node(str(sender))

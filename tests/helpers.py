"""Helpers shared by the tests (fixtures live in conftest.py; helpers live here, so tests import them)."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str, exc: Exception):
    message = f"{what} is unreachable: {exc}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)


def reset_process() -> None:
    """Drop everything this process built from the settings: settings, Celery config, engine, storage, models."""
    from shared import storage
    from shared.config import reset_settings
    from shared.db import session
    from shared.models import registry
    from tasks.app import configure

    reset_settings()
    configure()
    session.dispose()
    storage.reset()
    registry.clear()


@contextmanager
def configured(**env: str):
    """Point this process at other services (or settings) through the environment, then restore it."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset_process()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_process()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

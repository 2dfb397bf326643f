"""Readiness: the broker, the database and the storage are reachable. The answer names only which dependency is
down; what went wrong (hosts, users, buckets) goes to the log, never to whoever can reach the probe."""

from __future__ import annotations

import logging

from sqlalchemy import text

from adq.jobs.db.session import get_engine
from adq.jobs.storage import get_storage

log = logging.getLogger(__name__)


def _check(name: str, fn) -> str:
    try:
        fn()
        return "ok"
    except Exception as exc:  # report, never raise: this is the probe
        log.warning("readiness: the %s is down: %s: %s", name, type(exc).__name__, exc)
        return "down"


def _database() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("select 1"))


def _broker() -> None:
    from adq.tasks.app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)


def readiness() -> dict[str, str]:
    checks = {"database": _database, "broker": _broker, "storage": lambda: get_storage().check()}
    return {name: _check(name, fn) for name, fn in checks.items()}

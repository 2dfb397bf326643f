"""Readiness: the broker, the database and the storage are reachable."""

from __future__ import annotations

from sqlalchemy import text

from shared.jobs.db.session import get_engine
from shared.jobs.storage import get_storage


def _check(fn) -> str:
    try:
        fn()
        return "ok"
    except Exception as exc:  # report, never raise: this is the probe
        return f"{type(exc).__name__}: {exc}"[:300]


def _database() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("select 1"))


def _broker() -> None:
    from tasks.app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)


def readiness() -> dict[str, str]:
    return {"database": _check(_database), "broker": _check(_broker), "storage": _check(get_storage().check)}

"""One engine per process, made by a factory on first use; short-lived sessions from a context manager.

``make_engine(url)`` builds an engine for any URL (tests and tools call it directly); ``get_engine()`` is the
process's one engine for the configured URL, held by adq.core.process (a forked child makes its own, letting go
of the parent's pooled connections without closing them; ``adq.context.reset()`` disposes of it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from adq.core import process
from adq.core.config import get_settings
from adq.core.errors import DatabaseUnavailable, SchemaBehind


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Several worker processes share the embedded database: WAL lets readers run beside the one writer and
    # busy_timeout makes a writer wait for the lock instead of failing at once.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        from pathlib import Path

        path = url.split("///", 1)[-1]
        if path and path != ":memory:":  # the embedded database's folder is made when it is first opened
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # One connection per task thread (the overlapped design runs up to ADQ_WORKER_THREADS jobs at once), and some
    # over for the model lane's neighbours; a thread that waits for a pooled connection stalls its job.
    s = get_settings()
    size = max(2, s.worker_threads or 16)  # 16: above every pool's default (adq.workers.launch)
    return create_engine(url, pool_pre_ping=True, pool_size=size, max_overflow=4, connect_args=pg_connect_args(s))


def pg_connect_args(s) -> dict:
    """libpq's own bounds on a silent network: a connect that gets no answer, a peer that stopped answering
    (keepalive probes after 10 s idle, 3 misses 5 s apart; data unacknowledged for 30 s), and a statement that
    never ends. Each ends in an error that the stage retries, instead of a worker blocked for minutes."""
    args = {
        "connect_timeout": max(1, round(s.connect_timeout_s)),
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,
    }
    if s.statement_timeout_s:
        args["options"] = f"-c statement_timeout={round(s.statement_timeout_s * 1000)}"
    return args


def _connect(url: str) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(url)
    if url.startswith("sqlite"):
        # The embedded database migrates itself on first use: a new user's first command just works. A server
        # database is migrated by its operator (`adq migrate`), never behind their back.
        from adq.jobs.db.migrate import upgrade_engine

        upgrade_engine(engine)
    return engine, sessionmaker(engine, expire_on_commit=False)


def _held() -> tuple[Engine, sessionmaker[Session]]:
    url = get_settings().effective_database_url
    return process.once(
        ("engine", url),
        lambda: _connect(url),
        close=lambda held: held[0].dispose(),
        inherited=lambda held: held[0].dispose(close=False),  # the parent's connections stay the parent's
    )


def get_engine() -> Engine:
    return _held()[0]


def _schema_missing(exc: DBAPIError) -> bool:
    """A table or column the code uses does not exist: SQLite says so in words, PostgreSQL by SQLSTATE."""
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("42P01", "42703") or any(m in str(exc.orig) for m in ("no such table", "no such column"))


@contextmanager
def session_scope() -> Iterator[Session]:
    """Commit on success, roll back on error; connection failures surface as DatabaseUnavailable (retryable)."""
    session = _held()[1]()
    try:
        yield session
        session.commit()
    except (OperationalError, DBAPIError) as exc:
        session.rollback()
        if _schema_missing(exc):
            first = str(exc.orig).splitlines()[0]
            raise SchemaBehind(
                f"the database schema is behind this version of adq ({first}); run `adq migrate`"
            ) from exc
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise DatabaseUnavailable(f"database unavailable: {exc.orig!r}") from exc
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

"""Bring a database to the newest schema with Alembic (the only way the schema is created)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from adq.core.config import get_settings

MIGRATIONS = "adq.jobs.db:migrations"  # package data, resolved by Alembic through importlib.resources


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().effective_database_url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    from adq.jobs.db.session import get_engine

    get_engine()  # creates the SQLite folder when needed
    command.upgrade(alembic_config(url), revision)


def upgrade_engine(engine) -> None:
    """Upgrade the database behind ``engine`` to head, only when it is behind (a cheap revision check)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    command.upgrade(cfg, "head")


def current(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from adq.jobs.db.session import get_engine

    with get_engine().connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()

"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from shared.db.models import Base


def _diff(url):
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    return diff


def test_postgres_schema_matches_models(pg_url):
    assert _diff(pg_url) == []


def test_sqlite_schema_matches_models(sqlite_env):
    from alembic.script import ScriptDirectory

    from shared.config import get_settings
    from shared.db.migrate import alembic_config, current

    assert current() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert _diff(get_settings().effective_database_url) == []


def test_downgrade_and_upgrade_round_trip(pg_url):
    from alembic import command

    from shared.db.migrate import alembic_config, upgrade

    command.downgrade(alembic_config(pg_url), "base")
    upgrade(pg_url)
    assert _diff(pg_url) == []

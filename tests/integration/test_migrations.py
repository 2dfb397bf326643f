"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from adq.jobs.db.models import Base


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

    from adq.core.config import get_settings
    from adq.jobs.db.migrate import alembic_config, current

    assert current() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert _diff(get_settings().effective_database_url) == []


def test_downgrade_and_upgrade_round_trip(pg_url):
    from alembic import command

    from adq.jobs.db.migrate import alembic_config, upgrade

    command.downgrade(alembic_config(pg_url), "base")
    upgrade(pg_url)
    assert _diff(pg_url) == []


def test_a_new_embedded_database_migrates_itself_on_first_use(tmp_path):
    """A newcomer's first command needs no `adq migrate` on the embedded defaults."""
    import subprocess
    import sys

    env = {"ADQ_HOME": str(tmp_path / "fresh"), "ADQ_DATABASE_URL": "", "ADQ_BROKER_URL": "", "ADQ_STORAGE_URL": ""}
    code = "from adq.jobs import records; print(records.record('a red fox at sunset', seed=1)[0].status)"
    import os

    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "queued", done.stderr


def test_a_server_database_behind_the_code_names_adq_migrate(pg_url):
    import pytest
    from alembic import command

    from adq.core.errors import SchemaBehind
    from adq.jobs.db import jobs
    from adq.jobs.db.migrate import alembic_config
    from tests.helpers import configured

    command.downgrade(alembic_config(pg_url), "0003")  # a server database is never migrated behind its back
    with configured(ADQ_DATABASE_URL=pg_url), pytest.raises(SchemaBehind, match="run `adq migrate`"):
        jobs.get("00000000-0000-0000-0000-000000000000")

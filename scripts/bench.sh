#!/usr/bin/env bash
# `make bench`: the overhead benchmark on local Redis (db 14) and PostgreSQL (database adq_bench).
set -euo pipefail
cd "$(dirname "$0")/.."
export ADQ_BROKER_URL="${ADQ_BENCH_BROKER_URL:-redis://127.0.0.1:6379/14}"
export ADQ_DATABASE_URL="${ADQ_BENCH_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/adq_bench}"
export ADQ_HOME="${ADQ_HOME:-.adq/bench}"
.venv/bin/python - <<'PY'
from sqlalchemy import create_engine, text
from shared.config import get_settings
url = get_settings().effective_database_url
admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
name = url.rsplit("/", 1)[1]
with admin.connect() as c:
    if not c.execute(text("select 1 from pg_database where datname = :n"), {"n": name}).first():
        c.execute(text(f'create database "{name}"'))
PY
.venv/bin/python -c "import redis; from shared.config import get_settings; redis.Redis.from_url(get_settings().effective_broker_url).flushdb()"
.venv/bin/adq bench overhead --jobs "${BENCH_JOBS:-300}" --json "$ADQ_HOME/overhead.json"
.venv/bin/adq bench control --json "$ADQ_HOME/control.json"

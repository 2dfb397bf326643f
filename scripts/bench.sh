#!/usr/bin/env bash
# `make bench`: the overhead (with RabbitMQ beside Redis), control, efficiency and metrics benchmarks on local
# Redis (db 14), PostgreSQL
# (databases adq_bench and adq_bench_metrics) and, for the efficiency benchmark, a moto S3 server it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
export ADQ_BROKER_URL="${ADQ_BENCH_BROKER_URL:-redis://127.0.0.1:6379/14}"
export ADQ_DATABASE_URL="${ADQ_BENCH_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/adq_bench}"
export ADQ_HOME="${ADQ_HOME:-.adq/bench}"
METRICS_DB="${ADQ_DATABASE_URL%/*}/adq_bench_metrics"

# database URL [fresh]: create the database if it is missing (dropped first when "fresh")
database() {
  .venv/bin/python - "$@" <<'PY'
import sys
from sqlalchemy import create_engine, text
url, fresh = sys.argv[1], sys.argv[2:] == ["fresh"]
admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
name = url.rsplit("/", 1)[1]
with admin.connect() as c:
    if fresh:
        c.execute(text(f'drop database if exists "{name}"'))
    if not c.execute(text("select 1 from pg_database where datname = :n"), {"n": name}).first():
        c.execute(text(f'create database "{name}"'))
PY
}

database "$ADQ_DATABASE_URL"
.venv/bin/python -c "import redis; from adq.core.config import get_settings; redis.Redis.from_url(get_settings().effective_broker_url).flushdb()"
# RabbitMQ beside Redis in the overhead run: a fresh virtual host on the local RabbitMQ, unless one is given
if [ -z "${ADQ_BENCH_AMQP_URL:-}" ] && command -v rabbitmqctl >/dev/null; then
  rabbitmqctl -q delete_vhost adq-bench >/dev/null 2>&1 || true
  if rabbitmqctl -q add_vhost adq-bench && rabbitmqctl -q set_permissions -p adq-bench guest ".*" ".*" ".*"; then
    ADQ_BENCH_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/adq-bench
  fi
fi
.venv/bin/adq bench overhead --jobs "${BENCH_JOBS:-300}" --json "$ADQ_HOME/overhead.json" \
  ${ADQ_BENCH_AMQP_URL:+--rabbitmq "$ADQ_BENCH_AMQP_URL"}
.venv/bin/adq bench control --json "$ADQ_HOME/control.json"
.venv/bin/adq bench efficiency --json "$ADQ_HOME/efficiency.json"
.venv/bin/adq bench batching --json "$ADQ_HOME/batching.json"
# The metrics benchmark grows its database to a million rows: a scratch one, made afresh.
database "$METRICS_DB" fresh
ADQ_DATABASE_URL="$METRICS_DB" .venv/bin/adq bench metrics --json "$ADQ_HOME/metrics.json"

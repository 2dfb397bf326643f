#!/usr/bin/env bash
# Start Redis, PostgreSQL and RabbitMQ when they are installed but stopped. Tests decide what an unreachable one means
# (skip on a laptop, fail in CI), so this script only reports.
set -u
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if command -v redis-server >/dev/null; then
    echo "starting redis-server"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  else
    echo "redis-server is not installed: Redis tests will skip (or fail under CI=true)"
  fi
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting postgresql"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  else
    echo "PostgreSQL is not installed: PostgreSQL tests will skip (or fail under CI=true)"
  fi
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  if command -v rabbitmq-server >/dev/null; then
    echo "starting rabbitmq-server"
    service rabbitmq-server start >/dev/null 2>&1 || rabbitmq-server -detached >/dev/null 2>&1 || true
  else
    echo "rabbitmq-server is not installed: RabbitMQ tests will skip (or fail under CI=true)"
  fi
fi
for _ in $(seq 1 60); do  # RabbitMQ takes some seconds to boot
  (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null \
    && (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && exit 0
  sleep 0.5
done
exit 0

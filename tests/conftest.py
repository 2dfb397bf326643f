"""Fixtures that use real services: Redis, PostgreSQL and an S3 HTTP server (moto's server mode).

A service that is unreachable skips its tests on a laptop and fails them in CI (CI=true)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import IN_CI, configured, free_port, unavailable

# Embedded defaults live in a scratch home for the whole run; set before `shared` reads its settings.
_HOME = Path(tempfile.mkdtemp(prefix="adq-test-"))
os.environ["ADQ_HOME"] = str(_HOME)
os.environ.setdefault("ADQ_TORCH_THREADS", "1")
# The suite's keys make far more requests a minute than a tenant's default limit allows; the limit's own tests
# set it (tests/integration/test_api.py, tests/integration/test_security.py)
os.environ.setdefault("ADQ_RATE_LIMIT", "")
os.environ.setdefault("ADQ_OPERATOR_RATE_LIMIT", "")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _name in ("ADQ_BROKER_URL", "ADQ_DATABASE_URL", "ADQ_STORAGE_URL", "ADQ_DEVICE"):
    os.environ.pop(_name, None)
# Plumbing tests run on the tiny preset (random weights, any prompt); the shapes tests name their preset.
os.environ["ADQ_PRESET"] = "tiny"

REDIS_URL = os.environ.get("ADQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("ADQ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
PG_ADMIN_URL = os.environ.get("ADQ_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
    except Exception as exc:
        unavailable("Redis at " + REDIS_URL, exc)
    client.flushdb()
    return REDIS_URL


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture(scope="session")
def rabbitmq_server() -> str:
    """The machine's RabbitMQ (ADQ_TEST_AMQP_URL's host); each test gets a virtual host of its own on it."""
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.connect()
    except Exception as exc:
        unavailable("RabbitMQ at " + AMQP_URL, exc)
    return AMQP_URL


@pytest.fixture()
def amqp_url(rabbitmq_server) -> str:
    """A fresh virtual host: its queues, exchanges and their types are this test's alone; deleted afterwards."""
    vhost = f"adq-test-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"{rabbitmq_server.rstrip('/')}/{vhost}"
    rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def pg_server() -> str:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        unavailable("PostgreSQL at " + PG_ADMIN_URL, exc)
    yield PG_ADMIN_URL
    engine.dispose()


@pytest.fixture()
def pg_url(pg_server) -> str:
    """A fresh, migrated PostgreSQL database for one test; dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"adq_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_server.rsplit("/", 1)[0] + "/" + name
    from adq.jobs.db.migrate import upgrade

    upgrade(url)
    yield url
    from adq import context

    context.reset()  # the engine lets go of the database before it is dropped
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> str:
    """moto's server mode: a real S3 HTTP endpoint that several processes can use."""
    import urllib.request

    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.1)
    else:
        proc.kill()
        unavailable("moto S3 server", last)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture()
def s3_storage_url(s3_endpoint) -> str:
    import boto3

    bucket = f"adq-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/run"


@pytest.fixture()
def sqlite_env(tmp_path):
    """Embedded defaults in a fresh home: SQLite, file storage, filesystem broker."""
    with configured(ADQ_HOME=str(tmp_path / "home"), ADQ_DATABASE_URL="", ADQ_BROKER_URL="", ADQ_STORAGE_URL=""):
        from adq.jobs.db.migrate import upgrade

        upgrade()
        yield tmp_path / "home"


@pytest.fixture()
def pg_env(pg_url, tmp_path):
    with configured(ADQ_DATABASE_URL=pg_url, ADQ_HOME=str(tmp_path / "home"), ADQ_BROKER_URL="", ADQ_STORAGE_URL=""):
        yield pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_env(request):
    """The same test on the embedded database and on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_env")
    else:
        yield request.getfixturevalue("pg_env")


SERVICE_FIXTURES = {"redis_url", "rabbitmq_server", "amqp_url", "pg_server", "pg_url", "pg_env", "s3_endpoint"}
SERVICE_FIXTURES |= {"s3_storage_url", "system"}


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Apply the declared markers: `services` to every test that uses a real service, and deselect `gpu` tests
    where no CUDA device exists (so CI never runs them)."""
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) or params.get("db_env") == "postgresql":
            item.add_marker(pytest.mark.services)
    in_unit = [i.nodeid for i in items if i.nodeid.startswith("tests/unit/") and i.get_closest_marker("services")]
    if in_unit:  # unit tests run anywhere, with nothing started: a test that needs a service is an integration test
        raise pytest.UsageError(f"tests/unit/ holds tests that need a service: {in_unit}")
    if gpu and (IN_CI or not _has_cuda()):
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]

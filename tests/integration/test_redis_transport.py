"""A Redis channel closed after its connection: the race that killed a worker when Redis restarted.

Reproduced deterministically, as Celery's connection-loss path does it: a message delivered and not acked, the
kombu Connection closed (its transport's ``client`` set to None), then the channel closed."""

from __future__ import annotations

import logging

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as stock

from adq.tasks import redis_transport
from tests.helpers import configured, free_port

QUEUE = Queue("race", Exchange("race"), "race")


def _delivered_then_connection_closed(url: str, transport):
    """A channel holding one delivered, unacked message whose connection is already closed."""
    with Connection(url, transport=transport) as producer:
        producer.Producer().publish({"n": 1}, exchange=QUEUE.exchange, routing_key="race", declare=[QUEUE])
    conn = Connection(url, transport=transport)
    channel = conn.channel()
    message = QUEUE(channel).get(no_ack=False)
    assert message is not None and message.payload == {"n": 1}
    conn._do_close_transport()  # what Connection._close does before a late channel.close()
    return channel


@pytest.fixture()
def url(redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


def test_the_pinned_kombu_crashes_closing_a_channel_after_its_connection(url):
    """Upstream's bug, kept as a test: when it fails, kombu has fixed it and tasks/redis_transport.py can go."""
    channel = _delivered_then_connection_closed(url, stock.Transport)
    with pytest.raises(AttributeError, match="hostname"):
        channel.close()


def test_our_channel_closed_after_its_connection_puts_the_message_back(url):
    channel = _delivered_then_connection_closed(url, redis_transport.Transport)
    channel.close()
    r = redis.Redis.from_url(url)
    assert r.hlen("unacked") == 0 and r.llen("race") == 1  # restored to its queue, ready for another consumer


def test_our_channel_closed_while_redis_is_unreachable_keeps_the_message_in_the_unacked_hash(url, caplog):
    channel = _delivered_then_connection_closed(url, redis_transport.Transport)
    channel._kept_connparams |= {"port": free_port(), "socket_connect_timeout": 1}  # Redis is gone
    with caplog.at_level(logging.WARNING, logger=redis_transport.__name__):
        channel.close()  # does not raise: the worker stays up
    r = redis.Redis.from_url(url)
    assert r.hlen("unacked") == 1 and r.llen("race") == 0  # on the server, for restore_visible or the sweeper
    assert "left 1 unacked message(s)" in caplog.text


def test_celery_resolves_redis_urls_to_our_transport():
    from adq.tasks.app import app  # noqa: F401  (the app registers the transport)

    for url in ("redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6379/0?ssl_cert_reqs=required"):
        assert Connection(url).transport_cls in ("redis", "rediss")
        assert type(Connection(url).transport) is redis_transport.Transport


def test_broker_and_database_connections_end_every_wait_on_a_silent_network(pg_env):
    """The bounds tests/e2e/test_partitions.py relies on, as the clients get them."""
    import socket

    from adq.core.config import get_settings
    from adq.jobs.db.session import get_engine
    from adq.tasks.transports import transport_options

    with configured(ADQ_BROKER_URL="redis://127.0.0.1:6379/0", ADQ_CONNECT_TIMEOUT_S="4"):
        options = transport_options(get_settings())
        assert options["socket_connect_timeout"] == 4 and options["socket_timeout"] > 1  # BRPOP answers every 1 s
        assert options["socket_keepalive"] and options["socket_keepalive_options"][socket.TCP_USER_TIMEOUT] > 0
    with get_engine().connect() as c:
        assert c.exec_driver_sql("show statement_timeout").scalar() == "2min"
        libpq = c.connection.dbapi_connection.info.get_parameters()
        assert (libpq["connect_timeout"], libpq["keepalives_idle"], libpq["tcp_user_timeout"]) == ("5", "10", "30000")


def test_a_broadcast_after_the_app_is_configured_again_does_not_use_a_closed_pool(url):
    """configure() resets kombu's pools; Celery cached one of them for broadcasts, so the next inspect failed
    ("Acquire on closed pool") and the gateway took a job for a group no live worker consumes."""
    from adq.tasks.app import app, configure

    with configured(ADQ_BROKER_URL=url):
        app.control.inspect(timeout=0.2).active_queues()  # caches Celery's producer pool
        configure()
        assert app.control.inspect(timeout=0.2).active_queues() is None  # no worker answers; no error

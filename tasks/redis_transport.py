"""kombu's Redis transport, with a channel that can be closed after its connection.

Why a subclass: when a worker loses Redis, Celery closes the kombu ``Connection`` (which sets the transport's
``client`` to None) and can close a channel of it afterwards. kombu 5.7's ``virtual.Channel.close`` then requeues
the channel's unacked messages (``QoS.restore_unacked``); the Redis channel has already dropped its pools, so it
builds a new one from ``self.connection.client``, which is None: ``AttributeError: 'NoneType' object has no
attribute 'hostname'``. Celery counts an AttributeError as unrecoverable and the worker process exits
(``tests/integration/test_redis_transport.py`` shows it on the stock transport, deterministically; the same path was
reported upstream as celery/kombu#582 and #970, both closed).

Here the channel keeps the parameters of its last live connection, so a late close still reaches Redis and puts
its unacked messages back at the head of their queues. When Redis cannot be reached at that moment (it is the one
that went away), the messages stay where kombu put them at delivery, in the ``unacked`` hash on the server, and
the worker goes on: kombu's ``restore_visible`` or the sweeper (``tasks/sweeper.py``) sends them again. Either way
the close never raises, so a broker restart cannot end a worker.

Registered under kombu's own ``redis``, ``rediss`` and ``sentinel`` aliases (``TRANSPORT_ALIASES``, the registry
kombu exposes for transports), so every check Celery and kombu make on the scheme (TLS for ``rediss``) is unchanged."""

from __future__ import annotations

import logging

from kombu.transport import TRANSPORT_ALIASES, redis
from redis.exceptions import ConnectionError as RedisConnectionError

log = logging.getLogger(__name__)


class QoS(redis.QoS):
    def restore_unacked(self, client=None):
        try:
            super().restore_unacked(client)
        except Exception as exc:  # Redis is gone or going: the server-side unacked hash still holds every message
            log.warning(
                "left %d unacked message(s) in Redis's unacked hash (%s: %s); restore_visible or the sweeper "
                "sends them again",
                len(self._delivered),
                type(exc).__name__,
                exc,
            )
            self._delivered.clear()


class _KeepsConnparams:
    """Connection parameters kept from the last live connection, for a channel used after its close."""

    _kept_connparams: dict | None = None

    def _connparams(self, asynchronous=False):
        transport = self.connection
        if transport is None or transport.client is None:  # closed: the parameters it was opened with
            if self._kept_connparams is None:
                raise RedisConnectionError(
                    "the channel's connection is closed"
                )  # one of the transport's connection errors
            return dict(self._kept_connparams)
        params = super()._connparams(asynchronous=asynchronous)
        if not asynchronous:
            self._kept_connparams = dict(params)
        return params


class Channel(_KeepsConnparams, redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel


class SentinelChannel(_KeepsConnparams, redis.SentinelChannel):
    """The same for Sentinel: the channel also keeps the Sentinels' addresses, which kombu reads from the closed
    connection when a late ack or close builds a pool (the same AttributeError, seen on a failover)."""

    QoS = QoS
    _kept_sentinels: list | None = None

    def _sentinel_managed_pool(self, asynchronous=False):
        transport = self.connection
        if transport is not None and transport.client is not None:
            self._kept_sentinels = [
                (url.hostname, url.port or transport.default_port)
                for url in map(redis._parse_url, transport.client.alt)
                if url.scheme == "sentinel"
            ]
            return super()._sentinel_managed_pool(asynchronous)
        # What kombu's own method does, from the kept parameters
        params = self._connparams(asynchronous)
        extra = {k: v for k, v in params.items() if k not in ("host", "port")}
        found = redis.sentinel.Sentinel(
            self._kept_sentinels or [(params["host"], params["port"])],
            min_other_sentinels=getattr(self, "min_other_sentinels", 0),
            sentinel_kwargs=getattr(self, "sentinel_kwargs", None),
            **extra,
        )
        auth = {k: extra[k] for k in ("username", "password") if k in extra}
        return found.master_for(self.master_name, redis.redis.Redis, **auth).connection_pool


class SentinelTransport(redis.SentinelTransport):
    Channel = SentinelChannel


for _scheme in ("redis", "rediss"):
    TRANSPORT_ALIASES[_scheme] = f"{__name__}:Transport"
TRANSPORT_ALIASES["sentinel"] = f"{__name__}:SentinelTransport"

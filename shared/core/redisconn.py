"""The control plane's and the metrics' Redis client: the controller's value, its leader lock and the workers'
metrics live on ADQ_CONTROL_REDIS_URL (the broker's Redis by default). No Redis (the embedded defaults) is None,
and every caller treats that as "no value", never as an error.

A ``sentinel://host:26379;sentinel://host2:26379/0`` URL (kombu's form for the broker) names Redis Sentinels: the
client asks them for the master ADQ_SENTINEL_MASTER and follows it through a failover."""

from __future__ import annotations

from urllib.parse import urlsplit

from adq.core.config import get_settings
from adq.core.errors import InputError


def sentinels(url: str) -> tuple[list[tuple[str, int]], int, str | None]:
    """The Sentinels' addresses, the database and the password of a ``sentinel://`` URL."""
    hosts, db, password = [], 0, None
    for part in url.split(";"):
        parts = urlsplit(part.strip())
        if parts.scheme != "sentinel" or not parts.hostname:
            raise InputError(f"{part!r} is not a sentinel://host:port address (Sentinels are separated by ';')")
        hosts.append((parts.hostname, parts.port or 26379))
        password = parts.password or password
        if parts.path.strip("/"):
            db = int(parts.path.strip("/"))
    return hosts, db, password


def redis_from_url(url: str, timeout_s: float):
    import redis

    if not url.startswith("sentinel://"):
        return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    from redis.sentinel import Sentinel

    hosts, db, password = sentinels(url)
    kwargs = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    sentinel = Sentinel(hosts, sentinel_kwargs=kwargs, **kwargs)
    return sentinel.master_for(get_settings().sentinel_master, db=db, password=password)


def limits_url(url: str) -> str:
    """The limits library's storage URL for a Redis URL (its Sentinel form names the master in the path)."""
    if not url.startswith("sentinel://"):
        return url
    hosts, db, password = sentinels(url)
    auth = f":{password}@" if password else ""
    return f"redis+sentinel://{auth}{','.join(f'{h}:{p}' for h, p in hosts)}/{get_settings().sentinel_master}"


def redis_client(timeout_s: float = 0.2):
    """A client with short timeouts: deciding a job or serving a scrape never waits long on Redis."""
    url = get_settings().effective_control_redis_url
    if url is None:
        return None
    return redis_from_url(url, timeout_s)

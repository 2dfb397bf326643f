"""The control plane's and the metrics' Redis client: the controller's value, its leader lock and the workers'
metrics live on ADQ_CONTROL_REDIS_URL (the broker's Redis by default). No Redis (the embedded defaults) is None,
and every caller treats that as "no value", never as an error."""

from __future__ import annotations

from adq.core.config import get_settings


def redis_client(timeout_s: float = 0.2):
    """A client with short timeouts: deciding a job or serving a scrape never waits long on Redis."""
    url = get_settings().effective_control_redis_url
    if url is None:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

"""Per-key rate limits (ADQ_RATE_LIMIT, in the limits library's notation: "20/second", "1000/hour"), counted on
Redis with a moving window, so every gateway replica shares one count. A batch costs one hit per item."""

from __future__ import annotations

import math
import time

from limits import parse_many, storage, strategies

from adq.core import process
from adq.core.config import get_settings
from adq.core.errors import InputError, RateLimited
from adq.core.redisconn import limits_url


def _limiter(url: str) -> strategies.MovingWindowRateLimiter:
    return process.once(("limiter", url), lambda: strategies.MovingWindowRateLimiter(storage.storage_from_string(url)))


def _storage_url() -> str:
    s = get_settings()
    if s.rate_limit_storage_url:
        return s.rate_limit_storage_url
    return limits_url(s.effective_broker_url) if s.broker_kind == "redis" else "memory://"


def rules(who: str | None = None) -> list:
    from adq.gateway.auth import operator_names
    from adq.gateway.entitlements import UNLIMITED, of

    granted = of(who)
    if who is None:  # auth off: no tenant to protect
        return []
    if granted is UNLIMITED:  # an operator's key: limited too (a console left open on thumbnails), but higher
        raw = get_settings().operator_rate_limit if who in operator_names() else ""
    else:
        raw = granted.rate_limit or get_settings().rate_limit  # the key's own limit, else every key's
    if not raw:
        return []
    try:
        return parse_many(raw)
    except ValueError as exc:
        raise InputError(f"rate limit {raw!r} is not in the limits notation (e.g. 20/second): {exc}") from None


def hit(who: str | None, cost: int = 1) -> None:
    """Count ``cost`` requests against the caller's key; RateLimited (429, Retry-After) when over a limit."""
    limits_ = rules(who)
    if not limits_:
        return
    limiter = _limiter(_storage_url())
    key = who or "anonymous"
    for item in limits_:
        if not limiter.hit(item, "adq", key, cost=cost):
            reset = limiter.get_window_stats(item, "adq", key).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise RateLimited(f"API key {key!r} is over its rate limit of {item}; retry in {wait} s", wait)

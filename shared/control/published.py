"""The controller's published value in Redis, and the workers' cached read of it.

Workers read it at most once a second. A controller that is down, a value older than ADQ_CONTROL_STALE_S, a Redis
that does not answer within 200 ms, or no Redis at all (the embedded defaults) all mean the same: no value, so the
job's own k is used. Deciding never waits on the controller."""

from __future__ import annotations

import logging
import time

from adq.control.policy import ControlState
from adq.core.config import get_settings
from adq.core.redisconn import redis_client

log = logging.getLogger(__name__)

KEY = "adq:control"
LEADER_LOCK = "adq:controller:leader"
CACHE_S = 1.0


def publish(r, state: ControlState) -> None:
    r.set(KEY, state.to_json(), ex=max(1, int(3 * get_settings().control_stale_s)))


def read(r) -> ControlState | None:
    raw = r.get(KEY)
    return None if raw is None else ControlState.from_json(raw)


def fresh(state: ControlState | None, now: float | None = None) -> ControlState | None:
    """The state, or None when it is too old to trust."""
    now = time.time() if now is None else now
    if state is None or now - state.at > get_settings().control_stale_s:
        return None
    return state


class Published:
    """One process's cached view of the published value."""

    def __init__(self):
        self._client = None
        self._read_at = -1e9
        self._state: ControlState | None = None

    def current(self) -> ControlState | None:
        now = time.monotonic()
        if now - self._read_at >= CACHE_S:
            self._read_at = now
            try:
                self._client = self._client or redis_client()
                self._state = read(self._client) if self._client is not None else None
            except Exception as exc:  # any failure means "no controller": the job's own k
                log.debug("control value unreadable: %s", exc)
                self._state = None
        return fresh(self._state)

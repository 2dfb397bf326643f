"""What each worker's model memory holds, for Prometheus: loads, evictions and load seconds per preset (counters),
and the bytes resident per worker and preset (a gauge that expires when its worker stops reporting).

Written to Redis by the worker that loads (adq.method.models.residency), read by the gateway's scrape in one
round trip, as the job metrics are (adq.jobs.metrics). Best effort: a Redis that does not answer costs the
observation, never the load; with no Redis (the embedded defaults) nothing is written.
"""

from __future__ import annotations

import logging

from adq.jobs.metrics import PREFIX, client

log = logging.getLogger(__name__)

COUNTS = f"{PREFIX}:models"  # fields "<loads|evictions|load_seconds>|<preset>"
RESIDENT = f"{PREFIX}:resident:"  # one hash per worker: preset -> bytes
RESIDENT_TTL_S = 180  # a worker refreshes its gauge at least every liveness interval (60 s by default)


def observe(event: str, preset: str, seconds: float = 0.0) -> None:
    try:
        r = client()
        if r is None:
            return
        pipe = r.pipeline(transaction=False)
        pipe.hincrby(COUNTS, f"{'loads' if event == 'load' else 'evictions'}|{preset}", 1)
        if event == "load":
            pipe.hincrbyfloat(COUNTS, f"load_seconds|{preset}", float(seconds))
        pipe.execute()
    except Exception as exc:  # metrics never fail a load
        log.warning("model metrics not recorded: %s: %s", type(exc).__name__, exc)


def resident(worker: str, by_preset: dict[str, int]) -> None:
    try:
        r = client()
        if r is None:
            return
        key = RESIDENT + worker
        pipe = r.pipeline(transaction=True)
        pipe.delete(key)
        if by_preset:
            pipe.hset(key, mapping={k: int(v) for k, v in by_preset.items()})
            pipe.expire(key, RESIDENT_TTL_S)
        pipe.execute()
    except Exception as exc:
        log.warning("resident model bytes not recorded: %s: %s", type(exc).__name__, exc)


def read(r) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], int]]:
    """({(counter, preset): value}, {(worker, preset): bytes}) for a scrape."""
    counts = {}
    for field, value in r.hgetall(COUNTS).items():
        name, preset = field.decode().split("|", 1)
        counts[(name, preset)] = float(value)
    keys = list(r.scan_iter(match=RESIDENT + "*", count=500))
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    held = {}
    for key, fields in zip(keys, pipe.execute()):
        worker = key.decode().removeprefix(RESIDENT)
        for preset, nbytes in fields.items():
            held[(worker, preset.decode())] = int(nbytes)
    return counts, held


def report(event: str | None, presets: str, seconds: float, held: dict[str, int]) -> None:
    """A residency reporter (adq.method.models.residency.REPORTERS): count the event for each of its presets, and
    refresh this worker's resident bytes."""
    from adq.core.logs import worker_name

    if event is not None:
        for preset in presets.split(","):
            observe(event, preset, seconds)
    resident(worker_name(), held)

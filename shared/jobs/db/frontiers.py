"""Frontiers recorded by `adq tune --record`, and the newest one per preset as the workers read it (cached for a
few seconds: every decision under a control policy looks it up)."""

from __future__ import annotations

import time

from sqlalchemy import select

from adq.core import process
from adq.core.config import get_settings
from adq.jobs.db.models import Frontier
from adq.jobs.db.session import session_scope
from adq.method import frontier
from adq.method.frontier import Point

CACHE_S = 5.0


def record(preset: str, points: list[Point], source: str) -> int:
    with session_scope() as s:
        row = Frontier(preset=preset, points=frontier.to_json(points), source=source[:512])
        s.add(row)
        s.flush()
        row_id = row.id
    _cache().clear()
    return row_id


def _cache() -> dict:
    return process.once(("cache", "frontiers"), dict)


def latest(preset: str) -> list[Point]:
    """The newest recorded frontier of a preset ([] when none is)."""
    key = (get_settings().effective_database_url, preset)
    hit = _cache().get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_S:
        return hit[1]
    with session_scope() as s:
        row = s.scalars(
            select(Frontier).where(Frontier.preset == preset).order_by(Frontier.id.desc()).limit(1)
        ).one_or_none()
        points = frontier.from_json(row.points) if row is not None else []
    _cache()[key] = (time.monotonic(), points)
    return points

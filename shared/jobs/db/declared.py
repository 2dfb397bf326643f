"""Presets declared at run time by workers that serve a Python pipeline object (``adq worker --pipeline``).

A worker writes its object's preset here when it starts; a gateway or CLI that does not know a preset name looks
here before refusing it (``adq.jobs`` adds ``lookup`` to the presets' sources). The entry is the presets-file
format and is validated again when read."""

from __future__ import annotations

import logging
import socket

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from adq.jobs.db.models import DeclaredPreset
from adq.jobs.db.session import session_scope

log = logging.getLogger(__name__)


def declare(name: str, entry: dict) -> None:
    # One upsert: workers of one pipeline start together, and a read-then-insert let two of them insert the same
    # name (the second worker died on the primary key)
    values = {"name": name, "entry": entry, "declared_by": socket.gethostname()[:255]}
    with session_scope() as s:
        dialect = s.get_bind().dialect.name
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
        stmt = insert(DeclaredPreset).values(**values)
        changed = {"entry": stmt.excluded.entry, "declared_by": stmt.excluded.declared_by, "updated_at": func.now()}
        s.execute(stmt.on_conflict_do_update(index_elements=[DeclaredPreset.name], set_=changed))


def lookup(name: str) -> dict | None:
    """The declared entry, or None (also when the database is not reachable or not migrated: the caller then
    refuses the name as unknown, which is what it is to this process)."""
    try:
        with session_scope() as s:
            row = s.get(DeclaredPreset, name)
            return dict(row.entry) if row is not None else None
    except SQLAlchemyError as exc:
        log.debug("declared preset %r not looked up: %s", name, exc)
        return None


def publish(pipeline) -> int | None:
    """Make a pipeline object's preset known to every process (gateways and CLIs submit to it by name), and record
    its percentiles as the preset's calibration when none is recorded for these settings. Returns the calibration's
    id, or None when the object has no percentiles yet."""
    from adq.jobs.db import calibrations
    from adq.method.presets import settings_hash, student_settings, to_entry

    p = pipeline.preset
    declare(pipeline.name, to_entry(p))
    if pipeline.percentiles is None:
        return None
    settings = student_settings(p.name, p.student_steps, p.student_guidance, *p.student_size)
    row = calibrations.latest(p.name, settings_hash(settings))
    if row is not None:
        return row.id
    n = pipeline.percentiles.meta.get("n_samples")
    return calibrations.record(settings, pipeline.percentiles, n_samples=n, source=f"pipeline object {p.name}")

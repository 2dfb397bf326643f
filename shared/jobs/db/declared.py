"""Presets declared at run time by workers that serve a Python pipeline object (``adq worker --pipeline``).

A worker writes its object's preset here when it starts; a gateway or CLI that does not know a preset name looks
here before refusing it. The entry is the presets-file format and is validated again when read."""

from __future__ import annotations

import logging
import socket

from sqlalchemy.exc import SQLAlchemyError

from shared.jobs.db.models import DeclaredPreset
from shared.jobs.db.session import session_scope

log = logging.getLogger(__name__)


def declare(name: str, entry: dict) -> None:
    with session_scope() as s:
        row = s.get(DeclaredPreset, name) or DeclaredPreset(name=name)
        row.entry, row.declared_by = entry, socket.gethostname()[:255]
        s.merge(row)


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

"""What each API key may ask for: its presets, its highest priority, its largest k and teacher steps, and its rate
limit (ADQ_KEY_ENTITLEMENTS, JSON by key name, with "default" for keys not named). A key that is not named gets
the default entry, or the safe defaults below: normal priority at most, k up to 100, 50 teacher steps, every preset.
Every request of a key counts against its rate limit (retries and event streams too). With auth off there is no
tenant to protect, and nothing is limited here beyond the schema's bounds.

A job outside its key's entitlements answers 403 naming the field, the value and the limit; nothing is written."""

from __future__ import annotations

import json

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adq.core import process
from adq.core.config import get_settings
from adq.core.errors import InputError, NotEntitled
from adq.gateway.auth import caller, operator_names
from adq.jobs.priority import PRIORITIES, Priority
from adq.method.presets import get_preset


class Entitlement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    presets: list[str] | None = Field(None, description="Presets the key may use; None: every preset")
    max_priority: Priority = "normal"
    max_k: int = Field(100, ge=0, le=100)
    max_teacher_steps: int = Field(50, ge=1)
    rate_limit: str | None = Field(None, description="limits notation (20/second); None: ADQ_RATE_LIMIT")
    max_uploads: int = Field(1000, ge=0, description="Uploads the key may keep (POST /v1/uploads)")
    max_upload_bytes: int = Field(2_000_000_000, ge=0, description="Bytes of uploads the key may keep")


UNLIMITED = Entitlement(max_priority="high", max_teacher_steps=10**6, max_uploads=10**9, max_upload_bytes=10**15)


def _table(raw: str) -> dict[str, Entitlement]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("an object by key name")
        return {name: Entitlement.model_validate(entry) for name, entry in data.items()}
    except (ValueError, ValidationError) as exc:
        raise InputError(f"ADQ_KEY_ENTITLEMENTS is not valid: {exc}") from None


def table() -> dict[str, Entitlement]:
    raw = get_settings().key_entitlements
    return process.once(("entitlements", raw), lambda: _table(raw))


def of(who: str | None) -> Entitlement:
    if who is None or who in operator_names():  # auth off, or an operator's key
        return UNLIMITED
    found = table()
    return found.get(who) or found.get("default") or Entitlement()


def check(who: str | None, fields: dict, where: str = "") -> None:
    """Refuse a job whose parameters (as given, else its preset's) pass the key's entitlements."""
    e = of(who)
    if e is UNLIMITED:
        return
    preset = get_preset(fields.get("preset") or get_settings().preset)
    asked = {
        "preset": preset.name,
        "priority": fields.get("priority") or "normal",
        "k": fields["k"] if fields.get("k") is not None else preset.k,
        "teacher_steps": fields.get("teacher_steps") or preset.teacher_steps,
    }
    faults = []
    if e.presets is not None and asked["preset"] not in e.presets:
        faults.append(f"preset={asked['preset']!r} is not one of this key's presets ({', '.join(e.presets)})")
    if PRIORITIES.index(asked["priority"]) < PRIORITIES.index(e.max_priority):
        faults.append(f"priority={asked['priority']!r} is above this key's highest, {e.max_priority!r}")
    if asked["k"] > e.max_k:
        faults.append(f"k={asked['k']} is over this key's largest, {e.max_k}")
    if asked["teacher_steps"] > e.max_teacher_steps:
        faults.append(f"teacher_steps={asked['teacher_steps']} is over this key's largest, {e.max_teacher_steps}")
    if faults:
        raise NotEntitled(where + "; ".join(faults) + " (ADQ_KEY_ENTITLEMENTS)")


def check_upload(who: str | None, sha: str, size: int) -> None:
    """Refuse an upload that would take the key past its count or bytes of kept uploads (the same bytes again
    take nothing more: they are stored once). Unused uploads expire after ADQ_UPLOAD_TTL_S (`adq prune`)."""
    from adq.jobs import inputs

    e = of(who)
    if e is UNLIMITED:
        return
    kept = inputs.kept(who)
    if any(o.key.endswith("/" + sha) for o in kept):
        return
    if len(kept) + 1 > e.max_uploads:
        raise NotEntitled(f"this key keeps {len(kept)} uploads, its most (max_uploads, ADQ_KEY_ENTITLEMENTS)")
    used = sum(o.size for o in kept)
    if used + size > e.max_upload_bytes:
        raise NotEntitled(
            f"this key's uploads would take {used + size} bytes, over its max_upload_bytes={e.max_upload_bytes} "
            "(ADQ_KEY_ENTITLEMENTS)"
        )


def counted(who: str | None = Depends(caller)) -> None:
    """A router dependency: every request of a key counts against its rate limit."""
    from adq.gateway.limits import hit

    hit(who)

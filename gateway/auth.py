"""Bearer API keys from ADQ_API_KEYS ("name:key" pairs or bare keys), compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Header, HTTPException

from shared.core.config import get_settings


def parse_keys(raw: str) -> dict[str, str]:
    """key -> name. A bare key is named by a short hash of itself, so names never reveal keys."""
    keys: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, key = item.partition(":")
        if not sep:
            name, key = "key-" + hashlib.sha256(item.encode()).hexdigest()[:10], item
        keys[key.strip()] = name.strip()
    return keys


def caller(authorization: str | None = Header(default=None)) -> str | None:
    """The API key's name, or None when auth is off (no keys configured)."""
    keys = parse_keys(get_settings().api_keys)
    if not keys:
        return None
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    name = None
    for key, key_name in keys.items():  # compare against every key: timing reveals nothing about which matched
        if hmac.compare_digest(token.encode(), key.encode()):
            name = key_name
    if name is None:
        raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return name


def check_owner(job_owner: str | None, who: str | None) -> None:
    if who is not None and job_owner != who:
        raise HTTPException(403, "this job belongs to another API key")


def operator_names() -> set[str]:
    return {n.strip() for n in get_settings().operator_keys.split(",") if n.strip()}


def reader(authorization: str | None = Header(default=None)) -> str | None:
    """Whose jobs the caller may read: its own key's name, or None (every job) for an operator key or when auth
    is off. Writes (submit) still record the key's own name."""
    who = caller(authorization)
    return None if who is not None and who in operator_names() else who

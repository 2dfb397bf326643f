"""Bearer API keys from ADQ_API_KEYS, compared in constant time.

Each entry is ``name:sha256:<hex digest of the key>`` (what `adq api-key NAME` prints; the key itself is stored
nowhere), or, for development, ``name:key`` or a bare key. Either way only digests are kept in memory, and a caller's
token is hashed and compared against every digest.

The one parser serves the gateway's auth and `adq api`'s exposure check, and refuses what would fail open or
collide: a value that holds no key (","), a key under MIN_KEY_CHARS or a known placeholder, a name over 64
characters (the owner column) and two keys with one name (the owner is the name, so they would share a tenant)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Header, HTTPException

from adq.core import process
from adq.core.config import get_settings
from adq.core.errors import InputError, JobNotFound

MIN_KEY_CHARS = 16
MAX_NAME_CHARS = 64
HASHED = "sha256:"
PLACEHOLDERS = {"change-me", "changeme", "change-me-please", "secret", "password", "example", "test", "key", "xxx"}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str) -> tuple[str, str]:
    """A fresh random key and its ADQ_API_KEYS entry (hash form)."""
    key = secrets.token_urlsafe(32)
    entry = f"{name}:{HASHED}{digest(key)}"
    parse_keys(entry)  # the name is checked as the gateway will check it
    return key, entry


def weak(secret: str) -> bool:
    return len(secret) < MIN_KEY_CHARS or secret.lower() in PLACEHOLDERS or len(set(secret)) < 4


AUTH_OFF = "no API keys are set (ADQ_API_KEYS): every caller can read, cancel and submit every job"


def check_ops_token() -> None:
    """ADQ_OPS_TOKEN is refused as a weak key is: it opens /metrics, /v1/queues and /v1/control."""
    token = get_settings().ops_token
    if token and weak(token):
        raise InputError(
            f"ADQ_OPS_TOKEN is weak or a placeholder; use at least {MIN_KEY_CHARS} random characters "
            "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )


def _stored(name: str, key: str) -> str:
    """The digest of an entry's key: given in hash form, or computed from a plain key that is strong enough."""
    if key.startswith(HASHED):
        hexed = key[len(HASHED) :].lower()
        if len(hexed) != 64 or any(c not in "0123456789abcdef" for c in hexed):
            raise InputError(f"ADQ_API_KEYS: the key named {name!r} has a malformed sha256 digest (64 hex digits)")
        return hexed
    if weak(key):
        raise InputError(
            f"ADQ_API_KEYS: the key named {name!r} is weak or a placeholder; use at least {MIN_KEY_CHARS} "
            "random characters (`adq api-key NAME` makes one and prints its hashed entry)"
        )
    return digest(key)


def parse_keys(raw: str) -> dict[str, str]:
    """sha256 digest -> name. A bare key is named by a short hash of itself, so names never reveal keys. Raises
    InputError naming the fault (and the key's name, never the key)."""
    keys: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, key = item.partition(":")
        if not sep:
            name, key = "key-" + digest(item)[:10], item
        name, key = name.strip(), key.strip()
        if not name or len(name) > MAX_NAME_CHARS:
            raise InputError(f"ADQ_API_KEYS: a key name must have 1 to {MAX_NAME_CHARS} characters ({name[:20]!r}…)")
        if name in keys.values():
            raise InputError(f"ADQ_API_KEYS: two keys are named {name!r}; a name is a tenant, so each needs its own")
        keys[_stored(name, key)] = name
    if raw.strip() and not keys:
        raise InputError(f"ADQ_API_KEYS={raw!r} holds no key: leave it empty to turn auth off, or give name:key pairs")
    return keys


def configured_keys() -> dict[str, str]:
    raw = get_settings().api_keys
    return process.once(("api keys", raw), lambda: parse_keys(raw))


def caller(authorization: str | None = Header(default=None)) -> str | None:
    """The API key's name, or None when auth is off (no keys configured)."""
    keys = configured_keys()
    if not keys:
        return None
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    name, seen = None, digest(token)
    for stored, key_name in keys.items():  # compare against every key: timing reveals nothing about which matched
        if hmac.compare_digest(seen, stored):
            name = key_name
    if name is None:
        raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return name


def check_owner(owner: str | None, who: str | None, row_id: str, what: str = "job") -> None:
    """Another key's job answers exactly as a missing one does: a 403 would tell a prober that the id exists."""
    if who is not None and owner != who:
        raise JobNotFound(f"no {what} with id {row_id!r}")


def operator_names() -> set[str]:
    return {n.strip() for n in get_settings().operator_keys.split(",") if n.strip()}


def reader(authorization: str | None = Header(default=None)) -> str | None:
    """Whose jobs the caller may read: its own key's name, or None (every job) for an operator key or when auth
    is off. Writes (submit) still record the key's own name."""
    who = caller(authorization)
    return None if who is not None and who in operator_names() else who


def _bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def guarded() -> bool:
    """Whether the operational endpoints need a credential: once there are API keys or an ops token."""
    return bool(get_settings().ops_token or configured_keys())


def operations(authorization: str | None = Header(default=None)) -> None:
    """The ops token (Prometheus, KEDA) or an operator's API key; open only when nothing is configured."""
    if not guarded():
        return
    token, ops = _bearer(authorization), get_settings().ops_token
    if token is not None and ops and hmac.compare_digest(digest(token), digest(ops)):
        return
    if token is not None and configured_keys():
        name = caller(authorization)  # 401 for a key that is not one
        if name in operator_names():
            return
    raise HTTPException(
        401,
        "operational endpoint: send the ops token (ADQ_OPS_TOKEN) or an operator's API key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def any_caller(authorization: str | None = Header(default=None)) -> None:
    """The OpenAPI document: any valid API key or the ops token."""
    token, ops = _bearer(authorization), get_settings().ops_token
    if not guarded() or (token is not None and ops and hmac.compare_digest(digest(token), digest(ops))):
        return
    caller(authorization)

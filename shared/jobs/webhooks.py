"""Webhooks in the Standard Webhooks format (standardwebhooks.com), sent with httpx.

Each delivery carries ``webhook-id`` (the event's id, the same on every retry, so receivers drop repeats),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.
The key is ADQ_WEBHOOK_SECRET: a ``whsec_<base64>`` secret is decoded as the standard says; any other string is
used as its UTF-8 bytes (so ``standardwebhooks.Webhook(secret.encode())`` verifies it).

Targets must be http(s) and, unless the operator allows it, must not resolve to loopback, link-local, private or
otherwise reserved addresses. The name is resolved once per delivery and the request goes to the address that was
checked (the Host header and TLS name stay the URL's), so a DNS answer that changes in between (rebinding) cannot
move it. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlparse, urlunparse

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.core.config import get_settings
from shared.core.errors import InputError, WebhookError, WebhookUnavailable

MAX_URL = 2048
EVENTS = ("job.succeeded", "job.failed", "job.cancelled")


def _forbidden(ip: ipaddress._BaseAddress) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None and _forbidden(ip.ipv4_mapped))
    )


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    address: str  # the checked IP the request connects to


def resolve_target(url: str) -> Target:
    """Check the URL and resolve its host once; InputError names what is wrong."""
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise InputError(f"webhook_url must be a string of at most {MAX_URL} characters")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError(f"webhook_url {url!r} must be an http:// or https:// URL with a host")
    if not get_settings().webhook_secret:
        raise InputError("webhook_url given but the server has no ADQ_WEBHOOK_SECRET to sign webhooks with")
    host = parsed.hostname
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise InputError(f"webhook_url {url!r} has an invalid port") from None
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError):
        raise WebhookUnavailable(f"webhook_url host {host!r} does not resolve (now)") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not get_settings().webhook_allow_private:
        for ip in addresses:
            if _forbidden(ip):
                raise InputError(
                    f"webhook_url host {host!r} resolves to {ip}, a loopback, private, link-local or "
                    f"reserved address; set ADQ_WEBHOOK_ALLOW_PRIVATE=true to allow it"
                )
    return Target(url, host, str(addresses[0]))


def check_url(url: str) -> str:
    """At submit: the URL's form, and the addresses its host resolves to now. A host that does not resolve yet is
    accepted (DNS may lag a deploy); every delivery resolves and checks again, and connects to what it checked."""
    try:
        resolve_target(url)
    except WebhookUnavailable:
        pass
    return url


def check_events(events) -> list[str] | None:
    if events is None:
        return None
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise InputError(f"webhook_events must name some of {', '.join(EVENTS)}; got {unknown or 'none'}")
    return sorted(set(events))


def signer(secret: str | None = None) -> Webhook:
    secret = secret if secret is not None else get_settings().webhook_secret
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


def sign_headers(event_id: str, body: bytes, timestamp: int | None = None, secret: str | None = None) -> dict:
    ts = int(time.time()) if timestamp is None else timestamp
    signature = signer(secret).sign(event_id, datetime.fromtimestamp(ts, UTC), body.decode())
    return {"webhook-id": event_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def verify(body: bytes, headers: dict, secret: str) -> bool:
    """For receivers: the signature and the timestamp's age (five minutes either way), in constant time."""
    try:
        signer(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError):
        return False
    return True


def event_body(event_id: str, view: dict) -> bytes:
    """``{"id", "type", "timestamp", "data"}``; ``id`` equals the webhook-id header."""
    return json.dumps(
        {"id": event_id, "type": f"job.{view['status']}", "timestamp": view["times"]["finished_at"], "data": view},
        sort_keys=True,
        default=str,
    ).encode()


def _pinned(target: Target) -> tuple[str, dict, dict]:
    parsed = urlparse(target.url)
    ip = ipaddress.ip_address(target.address)
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = literal + (f":{parsed.port}" if parsed.port else "")
    headers = {"Host": parsed.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": target.host} if parsed.scheme == "https" else {}
    return urlunparse(parsed._replace(netloc=netloc)), headers, extensions


def deliver(url: str, body: bytes, event_id: str) -> int:
    """POST once. Raises WebhookUnavailable (retry) on timeouts, connection errors, 429 and 5xx, and WebhookError
    (give up) on other answers outside 2xx, or a target that is no longer allowed."""
    target = resolve_target(url)
    pinned, headers, extensions = _pinned(target)
    headers |= {"Content-Type": "application/json", "User-Agent": "adq-webhook/2"}
    headers |= sign_headers(event_id, body)
    try:
        with httpx.Client(timeout=get_settings().webhook_timeout_s, follow_redirects=False, trust_env=False) as http:
            resp = http.post(pinned, content=body, headers=headers, extensions=extensions)
    except httpx.HTTPError as exc:
        raise WebhookUnavailable(f"webhook {url} unreachable: {type(exc).__name__}: {exc}", status=None) from None
    if resp.status_code == 429 or resp.status_code >= 500:
        raise WebhookUnavailable(f"webhook {url} answered {resp.status_code}", status=resp.status_code)
    if not 200 <= resp.status_code < 300:
        raise WebhookError(f"webhook {url} answered {resp.status_code}; not retried", status=resp.status_code)
    return resp.status_code

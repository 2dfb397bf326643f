"""Webhooks: a signed JSON POST when a job succeeds or fails.

Signature: hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` with ADQ_WEBHOOK_SECRET, sent as
``X-ADQ-Signature: sha256=<hex>`` beside ``X-ADQ-Timestamp`` (Unix seconds); receivers should reject old timestamps.
Targets must be http(s) and, unless the operator allows it, must not resolve to loopback, link-local, private or
otherwise reserved addresses: the check runs at submit and again before each delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

from shared.config import get_settings
from shared.errors import InputError, WebhookError, WebhookUnavailable

MAX_URL = 2048


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


def check_url(url: str) -> str:
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise InputError(f"webhook_url must be a string of at most {MAX_URL} characters")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError(f"webhook_url {url!r} must be an http:// or https:// URL with a host")
    if not get_settings().webhook_secret:
        raise InputError("webhook_url given but the server has no ADQ_WEBHOOK_SECRET to sign webhooks with")
    if get_settings().webhook_allow_private:
        return url
    host = parsed.hostname
    try:
        infos = socket.getaddrinfo(
            host, parsed.port or (443 if parsed.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError, ValueError):
        raise InputError(f"webhook_url host {host!r} does not resolve") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if _forbidden(ip):
            raise InputError(
                f"webhook_url host {host!r} resolves to {ip}, a loopback, private, link-local or "
                f"reserved address; set ADQ_WEBHOOK_ALLOW_PRIVATE=true to allow it"
            )
    return url


def sign(body: bytes, timestamp: int, secret: str | None = None) -> str:
    key = (secret or get_settings().webhook_secret).encode()
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(body: bytes, timestamp: str, signature: str, secret: str, tolerance_s: int = 300) -> bool:
    """For receivers: constant-time check of the signature and the timestamp's age."""
    if not signature.startswith("sha256=") or abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature[7:], sign(body, int(timestamp), secret))


def event_body(event_id: str, view: dict) -> bytes:
    """``{"id", "event", "job"}``: the id is the same for every delivery of one event, so receivers can drop
    repeats (delivery is at least once)."""
    return json.dumps(
        {"id": event_id, "event": f"job.{view['status']}", "job": view}, sort_keys=True, default=str
    ).encode()


def deliver(url: str, body: bytes, event_id: str = "") -> int:
    """POST once. Raises WebhookUnavailable (retry) on timeouts, connection errors, 429 and 5xx, and WebhookError
    (give up) on other 4xx answers or a target that is no longer allowed."""
    check_url(url)
    ts = int(time.time())
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "adq-webhook/1",
            "X-ADQ-Timestamp": str(ts),
            "X-ADQ-Signature": "sha256=" + sign(body, ts),
            "X-ADQ-Event-Id": event_id,
        },
    )
    try:
        with _opener().open(req, timeout=get_settings().webhook_timeout_s) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise WebhookUnavailable(f"webhook {url} answered {exc.code}") from None
        raise WebhookError(f"webhook {url} answered {exc.code}; not retried") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise WebhookUnavailable(f"webhook {url} unreachable: {exc}") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could point a checked public URL at an internal one; receivers must answer directly.
    def redirect_request(self, *args, **kwargs):
        return None


def _opener():
    return urllib.request.build_opener(_NoRedirect)

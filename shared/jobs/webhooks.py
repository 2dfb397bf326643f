"""Webhooks in the Standard Webhooks format (standardwebhooks.com), sent with httpx.

Each delivery carries ``webhook-id`` (the event's id, the same on every retry, so receivers drop repeats),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.
Each tenant has its own key, derived from the master ADQ_WEBHOOK_SECRET: ``secret_for(owner)`` is
``whsec_<base64 HMAC-SHA256(master, "adq-webhook:" + owner)>``, so one tenant's receiver cannot be sent events
signed by another tenant, and no key is stored beside the master. `adq webhook-secret NAME` prints a tenant's; jobs
submitted with auth off are signed with the master itself. A ``whsec_<base64>`` master is decoded as the standard
says; any other string is used as its UTF-8 bytes.

Targets must be http(s) on an allowed port (ADQ_WEBHOOK_PORTS) and, unless the operator allows it, must not
resolve to any address that is not globally routable (loopback, private, link-local, shared address space such as
100.64.0.0/10, site-local, reserved, multicast). At submit only the URL's form is checked (and a literal IP): the
name is resolved at delivery, once, and the request goes to the address that was checked (the Host header and TLS
name stay the URL's), so a DNS answer that changes in between (rebinding) cannot move it. Redirects are not
followed. Refusals never name the address a host resolved to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlparse, urlunparse

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from adq.core.config import get_settings
from adq.core.errors import InputError, WebhookError, WebhookUnavailable

MAX_URL = 2048
EVENTS = ("job.succeeded", "job.failed", "job.cancelled")


def forbidden(ip: ipaddress._BaseAddress) -> bool:
    v6 = isinstance(ip, ipaddress.IPv6Address)
    return (
        not ip.is_global  # private, loopback, link-local, shared address space (100.64.0.0/10), documentation, ...
        or ip.is_private
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or (v6 and ip.is_site_local)  # fec0::/10, which is_global does not cover
        or (v6 and ip.ipv4_mapped is not None and forbidden(ip.ipv4_mapped))
        or (v6 and ip.sixtofour is not None and forbidden(ip.sixtofour))
    )


def allowed_ports() -> set[int]:
    raw = get_settings().webhook_ports
    try:
        return {int(p) for p in raw.split(",") if p.strip()}
    except ValueError:
        raise InputError(f"ADQ_WEBHOOK_PORTS={raw!r}: comma-separated port numbers") from None


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    address: str  # the checked IP the request connects to


def _form(url: str) -> tuple[str, int]:
    """The URL's form: scheme, host, an allowed port, and a literal IP host that is allowed. No DNS."""
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise InputError(f"webhook_url must be a string of at most {MAX_URL} characters")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError(f"webhook_url {shown(url)!r} must be an http:// or https:// URL with a host")
    if not get_settings().webhook_secret:
        raise InputError("webhook_url given but the server has no ADQ_WEBHOOK_SECRET to sign webhooks with")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise InputError(f"webhook_url {shown(url)!r} has an invalid port") from None
    open_ = get_settings().webhook_allow_private
    if not open_ and port not in allowed_ports():
        raise InputError(f"webhook_url port {port} is not one of ADQ_WEBHOOK_PORTS={get_settings().webhook_ports}")
    try:
        literal = ipaddress.ip_address(parsed.hostname.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None and not open_ and forbidden(literal):
        raise InputError(_refusal(parsed.hostname))
    return parsed.hostname, port


def _refusal(host: str) -> str:
    # Never the resolved address: a refusal that names it would map the internal network for whoever asks.
    return (
        f"webhook_url host {host!r} is not a public address (loopback, private, link-local, shared or reserved); "
        "set ADQ_WEBHOOK_ALLOW_PRIVATE=true to allow it"
    )


def resolve_target(url: str) -> Target:
    """At delivery: check the URL and resolve its host once; InputError names what is wrong."""
    host, port = _form(url)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError):
        raise WebhookUnavailable(f"webhook_url host {host!r} does not resolve (now)") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not get_settings().webhook_allow_private and any(forbidden(ip) for ip in addresses):
        raise InputError(_refusal(host))
    return Target(url, host, str(addresses[0]))


def check_url(url: str) -> str:
    """At submit: the URL's form only, never a DNS lookup (a name server that never answers would stall every
    caller of the gateway). Each delivery resolves, checks and connects to what it checked."""
    _form(url)
    return url


def secret_for(owner: str | None) -> str:
    """The signing secret of a tenant's webhooks (``whsec_…``): derived from the master, per API key name."""
    master = get_settings().webhook_secret
    if owner is None:
        return master
    key = base64.b64decode(master[6:]) if master.startswith("whsec_") else master.encode()
    derived = hmac.new(key, b"adq-webhook:" + owner.encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(derived).decode()


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


def pinned(target: Target) -> tuple[str, dict, dict]:
    parsed = urlparse(target.url)
    ip = ipaddress.ip_address(target.address)
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = literal + (f":{parsed.port}" if parsed.port else "")
    headers = {"Host": parsed.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": target.host} if parsed.scheme == "https" else {}
    return urlunparse(parsed._replace(netloc=netloc)), headers, extensions


def shown(url: str) -> str:
    """A webhook URL as logs and errors show it: scheme, host, port and path. The query, the fragment and any
    user:password go, since receivers put tokens there."""
    try:
        parsed = urlparse(url)
        netloc = parsed.netloc.rsplit("@", 1)[-1]
        return urlunparse((parsed.scheme, netloc, parsed.path, "", "", "")) + ("?…" if parsed.query else "")
    except ValueError:
        return "<unparsable URL>"


def deliver(url: str, body: bytes, event_id: str, owner: str | None = None) -> int:
    """POST once, signed with the owner's secret. Raises WebhookUnavailable (retry) on timeouts, connection errors,
    429 and 5xx, and WebhookError (give up) on other answers outside 2xx, or a target that is not allowed."""
    target = resolve_target(url)
    connect_url, headers, extensions = pinned(target)
    headers |= {"Content-Type": "application/json", "User-Agent": "adq-webhook/2"}
    headers |= sign_headers(event_id, body, secret=secret_for(owner))
    try:
        # Only the status is read: the receiver's body is never read (nor decompressed), however large it is.
        headers["Accept-Encoding"] = "identity"
        with (
            httpx.Client(timeout=get_settings().webhook_timeout_s, follow_redirects=False, trust_env=False) as http,
            http.stream("POST", connect_url, content=body, headers=headers, extensions=extensions) as resp,
        ):
            pass
    except httpx.HTTPError as exc:
        # httpx's text can quote the request's URL (the pinned one, query included): only the type is kept
        raise WebhookUnavailable(f"webhook {shown(url)} unreachable: {type(exc).__name__}", status=None) from None
    if resp.status_code == 429 or resp.status_code >= 500:
        raise WebhookUnavailable(f"webhook {shown(url)} answered {resp.status_code}", status=resp.status_code)
    if not 200 <= resp.status_code < 300:
        raise WebhookError(f"webhook {shown(url)} answered {resp.status_code}; not retried", status=resp.status_code)
    return resp.status_code

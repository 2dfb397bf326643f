"""Security headers on every answer: nothing is sniffed, framed or sent a referrer, and the console's page runs only
its own script and styles (it has no inline script and loads nothing from elsewhere).

A pure ASGI middleware, so an error answer or a streamed one (events, images) carries them too."""

from __future__ import annotations

# The console draws images from blob: URLs it makes from authenticated fetches (an <img> cannot send the key); an
# image's fetch follows the gateway's redirect to a presigned URL, so the storage's origin is one it may connect to.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'{store}; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def storage_origin() -> str:
    """Where presigned image URLs point: the S3 endpoint's origin, AWS's S3 hosts, or nowhere (file storage)."""
    from urllib.parse import urlparse

    from adq.core.config import get_settings

    s = get_settings()
    if not s.effective_storage_url.startswith("s3://"):
        return ""
    if s.s3_endpoint_url:
        u = urlparse(s.s3_endpoint_url)
        return f" {u.scheme}://{u.netloc}"
    return " https://*.amazonaws.com"


API_CSP = "default-src 'none'; frame-ancestors 'none'"  # JSON, images and streams: nothing to run, ever
COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app):
        self.app = app
        self.console_csp = CONSOLE_CSP.format(store=storage_origin())  # settings as the app was made with

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = self.console_csp if scope["path"].startswith("/console") else API_CSP
        if scope["path"] == "/docs":  # Swagger UI (an open development gateway only) loads its script from a CDN
            csp = None
        added = COMMON + ([(b"content-security-policy", csp.encode())] if csp else [])

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in added if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)

"""Security headers on every answer: nothing is sniffed, framed or sent a referrer, and the console's page runs only
its own script and styles (it has no inline script and loads nothing from elsewhere).

A pure ASGI middleware, so an error answer or a streamed one (events, images) carries them too."""

from __future__ import annotations

# The console draws images from blob: URLs it makes from authenticated fetches (an <img> cannot send the key).
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
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

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = CONSOLE_CSP if scope["path"].startswith("/console") or scope["path"] == "/docs" else API_CSP
        if scope["path"] == "/docs":  # Swagger UI (an open development gateway only) loads its script from a CDN
            csp = None
        added = COMMON + ([(b"content-security-policy", csp.encode())] if csp else [])

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in added if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)

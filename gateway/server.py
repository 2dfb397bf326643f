"""The gateway's HTTP server: uvicorn with the limits it lacks by default.

uvicorn closes idle keep-alive connections but waits for a request's headers forever, so a client sending one
header byte every few seconds holds a connection (and its slot) indefinitely. ``HeaderTimeout`` closes a
connection whose request headers are not complete within ``ADQ_API_HEADER_TIMEOUT_S`` of the connection (or of the
previous response); ``ADQ_API_MAX_CONNECTIONS`` caps open connections and tasks (over it: 503), and a request's
head is capped at 16 KiB."""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from adq.core.config import get_settings

MAX_HEAD_BYTES = 16 * 1024


class HeaderTimeout(H11Protocol):
    _head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(get_settings().api_header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _expire(self) -> None:
        if self._waiting_for_head() and not self.transport.is_closing():
            self.logger.warning("closed a connection whose request head took over ADQ_API_HEADER_TIMEOUT_S")
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._waiting_for_head():  # the head is in: the request runs under the app's own limits
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def config(app, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=True,
        http=HeaderTimeout,
        limit_concurrency=get_settings().api_max_connections,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )


def serve(app, host: str, port: int, log_level: str = "warning") -> None:
    uvicorn.Server(config(app, host, port, log_level)).run()

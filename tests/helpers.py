"""Helpers shared by the tests (fixtures live in conftest.py; helpers live here, so tests import them)."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the checkout: docs and infra files tests read
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# An e2e test that runs on Redis and on RabbitMQ (tests/e2e/conftest.py's `system`)
BOTH_BROKERS = pytest.mark.parametrize("system", ["redis", "amqp"], indirect=True)


def unavailable(what: str, exc: Exception):
    message = f"{what} is unreachable: {exc}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services are required)")
    pytest.skip(message)


def reset_process() -> None:
    """Drop everything this process built from the settings (the one reset: settings, engine, storage, models,
    lane, clients), then configure Celery from the new ones."""
    from adq import context
    from adq.tasks.app import configure

    context.reset()
    configure()


@contextmanager
def configured(**env: str):
    """Point this process at other services (or settings) through the environment, then restore it."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset_process()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_process()


def stored(storage, key: str) -> bool:
    """Whether an object is there (the product never asks: it reads, or deletes idempotently)."""
    from adq.core.errors import ObjectNotFound

    try:
        storage.get(key)
        return True
    except ObjectNotFound:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CuttableProxy:
    """A TCP proxy on loopback in front of a real service. ``cut()`` closes every connection and stops listening,
    so clients get "connection refused" as from a server that went away; ``restore()`` listens again, and the
    service behind it kept its data (moto keeps its buckets, PostgreSQL its rows). ``stall()`` keeps connections
    open but stops forwarding requests (a request in flight hangs, as on a congested link) until ``flow()``;
    ``held`` counts the requests it is holding."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", listen_host: str = "127.0.0.1"):
        import threading

        self._flowing = threading.Event()
        self._flowing.set()
        self.held = 0
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = free_port()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        import threading

        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.listen_host, self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            conns, self._conns = self._conns, []
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, which holds the socket until then
            except OSError:
                pass
            server.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def stall(self) -> None:
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    def _accept(self, server: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._server is not server:
                    client.close(), upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b, gated in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, gated), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, gated: bool) -> None:
        try:
            while data := src.recv(65536):
                if gated and not self._flowing.is_set():
                    with self._lock:
                        self.held += 1
                    self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def broker_drained(since: float | None = None) -> bool:
    """The broker's join (dramatiq's ``StubBroker.join()``): no task message waits in a queue and none is delivered
    but unacknowledged. With late acks, every message a worker took has then been run to its end, so whatever a
    duplicate delivery would do has been done. ``since`` (a time.time()): count only deliveries after it, leaving
    out the unacked message a killed worker left behind (kombu restores it only after the visibility timeout)."""
    import time

    from adq.core.config import get_settings
    from adq.tasks.broker import pending_task_ids, queue_depths

    if get_settings().broker_kind == "amqp":  # RabbitMQ counts what waits; what it delivered it redelivers itself
        return not any(queue_depths().values())
    pending = pending_task_ids(unacked_within_s=None if since is None else time.time() - since)
    assert pending is not None, "this broker cannot be inspected"
    return not pending

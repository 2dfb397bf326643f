"""Log lines: human-readable on a terminal, JSON lines (python-json-logger) otherwise or when ADQ_LOG_FORMAT=json.

Every line carries ``worker`` (this process: node/host/pid); a line logged while a stage runs a job also carries
``job_id``, ``stage`` and ``attempt`` (``job_context``, set by adq.jobs.runner and the webhook task), and the
gateway's lines carry ``request_id`` (asgi-correlation-id, registered with ``add_field``). The fields travel in
context variables, so the threads of an overlapped worker never mix up their jobs."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOB_FIELDS = ("job_id", "stage", "attempt")
_job: ContextVar[dict | None] = ContextVar("adq_job", default=None)
_fields: dict[str, Callable[[], object]] = {}
_node: list[str] = []


@contextmanager
def job_context(**fields) -> Iterator[None]:
    """Tag every line logged inside with these job fields (job_id, stage, attempt)."""
    token = _job.set({**(_job.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _job.reset(token)


def add_field(name: str, getter: Callable[[], object]) -> None:
    """One more field on every line, read when the line is logged (the gateway's request id)."""
    _fields[name] = getter


def set_node(node: str) -> None:
    """The Celery node name, once the worker knows it (``student@host``)."""
    _node[:] = [node]


def worker_name() -> str:
    return f"{_node[0] if _node else 'adq'}/{socket.gethostname()}/{os.getpid()}"


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = worker_name()
        for name, value in (_job.get() or {}).items():
            setattr(record, name, value)
        for name, getter in _fields.items():
            value = getter()
            if value is not None:
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """The terminal's format, with the job's fields appended when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [f"{k}={getattr(record, k)}" for k in (*JOB_FIELDS, "request_id") if hasattr(record, k)]
        return f"{line} [{' '.join(tags)}]" if tags else line


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return TextFormatter(TEXT)


class StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it was when made, and to the one there now once that is closed: a command run
    in-process (the tests' ``main([...])``) may have been handed a stream that is closed after it. Never the live
    ``sys.stderr`` as such: Celery's worker replaces it with a proxy that logs, which would log each line again."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self.stream, "closed", False):
            self.stream = sys.stderr
        super().emit(record)


def configure(level: int, kind: str = "auto", stream=None) -> logging.Handler:
    """Install this process's one root handler (replacing an earlier one of ours). ``kind``: auto, json or text;
    auto means text on a terminal, JSON lines elsewhere (containers, files, CI)."""
    if kind == "auto":
        kind = "text" if getattr(stream or sys.stderr, "isatty", lambda: False)() else "json"
    handler = logging.StreamHandler(stream) if stream is not None else StderrHandler(sys.stderr)
    handler.setFormatter(formatter(kind))
    handler.addFilter(ContextFilter())
    handler.adq = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "adq", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler

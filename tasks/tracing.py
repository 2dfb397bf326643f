"""Celery's side of tracing (adq.core.tracing): the instrumentation that opens a span per task run and per publish,
and carries the trace context in the message headers. Called by every process that sends or runs tasks."""

from __future__ import annotations

from adq.core import tracing


def setup(service: str) -> bool:
    if not tracing.setup(service):
        return False
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    instrumentor = CeleryInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return True

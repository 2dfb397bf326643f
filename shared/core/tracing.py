"""OpenTelemetry tracing, off unless ADQ_OTEL_EXPORTER is set: one trace follows a job from the gateway's request
through the student, the teacher and the webhook. The Celery instrumentation (adq.tasks.tracing) carries the trace
context in each message's headers, so a task's span is the child of the span that sent it.

Exporters: ``otlp`` (OTLP over HTTP; the standard OTEL_EXPORTER_OTLP_* variables say where), ``console``, and
``memory`` (the SDK's in-memory exporter, which tests read)."""

from __future__ import annotations

import threading

from adq.core.config import get_settings
from adq.core.errors import InputError

EXPORTERS = ("otlp", "console", "memory")
_lock = threading.Lock()
_state: dict = {}


def setup(service: str) -> bool:
    """Install this process's tracer provider once; False when tracing is off. A prefork child inherits it (the
    SDK's batch processor restarts its thread after a fork)."""
    kind = get_settings().otel_exporter
    if not kind:
        return False
    if kind not in EXPORTERS:
        raise InputError(f"ADQ_OTEL_EXPORTER={kind!r} must be one of {', '.join(EXPORTERS)} (or empty: off)")
    with _lock:
        if _state:
            return True
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if kind == "memory":
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

            exporter = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        elif kind == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporter = ConsoleSpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _state.update(exporter=exporter)
        return True

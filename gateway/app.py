"""FastAPI app: the routers, and the one error table."""

from __future__ import annotations

from fastapi import FastAPI

from gateway import errors
from gateway.routes import batches, events, jobs, ops


def create_app() -> FastAPI:
    app = FastAPI(title="adq gateway", version="1", description="Adaptive student->teacher diffusion jobs")
    errors.install(app)
    app.include_router(jobs.router)
    app.include_router(batches.router)
    app.include_router(events.router)
    app.include_router(ops.router)
    return app

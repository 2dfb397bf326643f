"""The Celery layer: the app, thin tasks over shared.jobs.runner, enqueueing and the sweeper.
`celery -A tasks worker -Q teacher` finds the app here."""

from tasks import liveness, maintenance, stages, webhooks  # noqa: F401  (registers tasks, signal handlers, steps)
from tasks.app import app

celery = app
__all__ = ["app", "celery"]

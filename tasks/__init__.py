"""The Celery layer: the app, thin tasks over adq.jobs.runner, enqueueing and the sweeper.
`celery -A adq.tasks worker -Q teacher` finds the app here."""

from adq.tasks import liveness, signals, stages, webhooks  # noqa: F401  (registers tasks, signal handlers, steps)
from adq.tasks.app import app

celery = app
__all__ = ["app", "celery"]

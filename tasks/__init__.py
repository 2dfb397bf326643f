"""Celery tasks. `celery -A tasks worker -Q teacher` finds the app here."""

from tasks.app import app
from tasks import maintenance, stages, webhooks  # noqa: F401  (registers the tasks and signal handlers)

celery = app
__all__ = ["app", "celery"]

"""The whole client for web backends in one import: the enqueueing half (here, with Celery) beside the read side
(``adq.jobs.records``, which needs no broker). ``from tasks import client; client.submit("a cat", k=50)``."""

from adq.jobs.records import get, image_bytes, wait
from adq.tasks.enqueue import cancel, cancel_batch, retry, submit, submit_batch

__all__ = ["cancel", "cancel_batch", "get", "image_bytes", "retry", "submit", "submit_batch", "wait"]

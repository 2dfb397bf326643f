"""The whole client for web backends in one import: the enqueueing half (here, with Celery) beside the read side
(``shared.client``, which needs no broker). ``from tasks import client; client.submit("a cat", k=50)``."""

from shared.client import cancel, get, image_bytes, wait
from tasks.enqueue import retry, submit

__all__ = ["cancel", "get", "image_bytes", "retry", "submit", "wait"]

"""The CLI's two ways to the system, with one interface: the gateway over HTTP when ADQ_API_URL is set
(adq.sdk.Client), else the library in this process (the database and broker of the settings)."""

from __future__ import annotations

from typing import Any

from adq.core.config import get_settings
from adq.jobs.events import Event, follow
from adq.jobs.schema import BatchView, JobView


class Local:
    """The library in-process, shaped like adq.sdk.Client."""

    def __enter__(self) -> Local:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def upload(self, image) -> str:
        from pathlib import Path

        from adq.jobs import inputs

        data = image if isinstance(image, bytes) else Path(image).read_bytes()
        return inputs.put(data, None, "file")[0]

    def submit(self, prompt: str, *, idempotency_key: str | None = None, **params: Any) -> JobView:
        from pathlib import Path

        from adq.tasks import client

        for field in ("init_image", "control_image"):  # a file is uploaded first, as the HTTP client does
            value = params.get(field)
            if isinstance(value, (bytes, Path)) or (isinstance(value, str) and Path(value).is_file()):
                params[field] = self.upload(value)
        return client.submit(prompt, idempotency_key=idempotency_key, **params)

    def get(self, job_id: str) -> JobView:
        from adq.jobs import groups, records

        view = records.get(job_id)
        return view.model_copy(update={"outputs": groups.outputs(view)})  # as the gateway shows it

    def cancel(self, job_id: str) -> JobView:
        from adq.tasks import client

        return client.cancel(job_id)

    def retry(self, job_id: str) -> JobView:
        from adq.tasks import client

        return client.retry(job_id)

    def image(self, job_id: str, which: str = "final") -> bytes:
        from adq.jobs import records

        return records.image_bytes(job_id, which)

    def list(self, *, status=None, limit: int = 50, cursor=None, **filters):
        from adq.jobs.db import queries

        rows, next_cursor = queries.list_page(None, scoped=False, cursor=cursor, limit=limit, status=status)
        return [JobView.of(r) for r in rows], next_cursor

    def submit_batch(self, items, *, shared=None, idempotency_key=None, **delivery) -> BatchView:
        from adq.gateway.routes.batches import view_of
        from adq.tasks import client

        batch, views = client.submit_batch(items, {**(shared or {}), **delivery}, idempotency_key=idempotency_key)
        return view_of(batch, views)

    def events(self, job_id: str, last_event_id: str | None = None):
        yield from follow(
            job_id=job_id, scoped=False, after=int(last_event_id or 0), poll_s=get_settings().events_poll_s
        )

    def wait(self, job_id: str, on_event=None) -> JobView:
        for event in self.events(job_id):
            if on_event is not None:
                on_event(event)
        return self.get(job_id)


def open_backend():
    s = get_settings()
    if s.api_url:
        from adq.sdk import Client

        return Client(s.api_url, api_key=s.api_key or None)
    return Local()


def no_worker_hint(event: Event) -> str | None:
    """When the job waits on a queue that no live worker consumes (local mode only: it asks the broker)."""
    stage = event.data.get("stage")
    if get_settings().api_url or event.type != "progress" or event.status not in ("queued", "teacher_queued"):
        return None
    from adq.tasks.broker import live_consumers

    if live_consumers(stage) == 0:
        return f"no live worker serves the {stage} queue; start one with `adq worker {stage}`"
    return None

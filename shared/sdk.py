"""A small typed client for web backends, over httpx: submit, get, list, cancel, retry, batches, and waiting on
a job's event stream (httpx-sse), resuming with Last-Event-ID when the connection drops.

    from adq.sdk import Client

    with Client("http://adq-api:8000", api_key="...") as adq:
        job = adq.submit("a cat on a sofa", k=30, priority="high")
        done = adq.wait(job.id, on_event=print)
        png = adq.image(done.id)

Errors come back as the project's own, by the stable ``type`` the gateway puts in every error body (JobNotFound,
CalibrationError, IdempotencyConflict, JobFinished, ...), never by its message; 429 is RateLimited (with
``retry_after_s``), 503 ApiUnavailable (a TransientError); anything else is ApiError.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from adq.core import errors
from adq.core.errors import AdqError, InputError, JobConflict, JobNotFound, RateLimited, ResultExpired, TransientError
from adq.jobs.events import Event
from adq.jobs.schema import BatchView, JobView

ERRORS: dict[int, type[AdqError]] = {404: JobNotFound, 409: JobConflict, 410: ResultExpired, 422: InputError}
# Error types the gateway names, raised as they are: every project error, read from the one error root's module
# (transient ones never get here: 503 is ApiUnavailable).
BY_TYPE: dict[str, type[AdqError]] = {
    cls.__name__: cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, AdqError)
}


class ApiError(AdqError):
    """The gateway answered with a status this client does not map."""


class ApiUnavailable(TransientError):
    """The gateway could not be reached, or answered 503."""


class Client:
    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 30.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"{self.http.base_url} unreachable: {exc}") from None
        if resp.status_code < 400 or resp.status_code == 307:
            return resp
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        message, kind = body.get("error") or resp.text, body.get("type")
        if resp.status_code == 429:
            raise RateLimited(message, int(resp.headers.get("Retry-After", "1")))
        if resp.status_code == 503:
            raise ApiUnavailable(message)
        # The body's stable type names the project's own error; the status is the fallback for older gateways.
        kind_of = BY_TYPE.get(kind) or ERRORS.get(resp.status_code, ApiError)
        raise kind_of(f"{resp.status_code}: {message}")

    # Input images
    def upload(self, image: str | Path | bytes) -> str:
        """Upload an input image (a path or its bytes); its id, for a job's init_image or control_image."""
        data = image if isinstance(image, bytes) else Path(image).read_bytes()
        return self._call("POST", "/v1/uploads", files={"file": ("image", data)}).json()["id"]

    def _refs(self, params: dict) -> dict:
        """Image fields given as a path or bytes are uploaded first; ids, URLs and data: URIs go as they are."""
        for field in ("init_image", "control_image"):
            value = params.get(field)
            if isinstance(value, (bytes, Path)) or (isinstance(value, str) and Path(value).is_file()):
                params[field] = self.upload(value)
        return params

    # Jobs
    def submit(
        self, prompt: str, *, idempotency_key: str | None = None, wait_s: int | None = None, **params: Any
    ) -> JobView:
        """Enqueue a job. ``wait_s`` (1-60) answers when it ends, or after that many seconds with the job so far
        (``Prefer: wait``): check ``view.done``."""
        headers, extra = self._waiting(idempotency_key, wait_s)
        params = self._refs(params)
        body = {"prompt": prompt, **{k: v for k, v in params.items() if v is not None}}
        return JobView(**self._call("POST", "/v1/jobs", json=body, headers=headers, **extra).json())

    def _waiting(self, idempotency_key: str | None, wait_s: int | None) -> tuple[dict, dict]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if wait_s is None:
            return headers, {}
        read = self.http.timeout.read or 30.0  # the answer comes after the wait: the read timeout must outlast it
        return headers | {"Prefer": f"wait={wait_s}"}, {"timeout": wait_s + read}

    def get(self, job_id: str) -> JobView:
        return JobView(**self._call("GET", f"/v1/jobs/{job_id}").json())

    def cancel(self, job_id: str) -> JobView:
        return JobView(**self._call("POST", f"/v1/jobs/{job_id}/cancel").json())

    def retry(self, job_id: str) -> JobView:
        return JobView(**self._call("POST", f"/v1/jobs/{job_id}/retry").json())

    def image(self, job_id: str, which: str = "final") -> bytes:
        if which == "student":  # served by link only
            link = self.get(job_id).images.student
            if link is None:
                raise JobConflict(f"job {job_id} has no student image link")
            return httpx.get(link, timeout=self.http.timeout).content
        resp = self._call("GET", f"/v1/jobs/{job_id}/image")
        if resp.status_code == 307:  # a presigned link to the object store
            return httpx.get(resp.headers["location"], timeout=self.http.timeout).content
        return resp.content

    def list(self, *, status: list[str] | None = None, limit: int = 50, cursor: str | None = None, **filters):
        """One page: ``(jobs, next_cursor)``; pass next_cursor back for the next page (None after the last)."""
        params: dict = {"limit": limit, **{k: v for k, v in filters.items() if v is not None}}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        page = self._call("GET", "/v1/jobs", params=params).json()
        return [JobView(**j) for j in page["jobs"]], page["next_cursor"]

    def iter_jobs(self, **filters) -> Iterator[JobView]:
        cursor = None
        while True:
            page, cursor = self.list(cursor=cursor, **filters)
            yield from page
            if cursor is None:
                return

    # Batches
    def submit_batch(
        self,
        items: list[dict],
        *,
        shared: dict | None = None,
        idempotency_key: str | None = None,
        wait_s: int | None = None,
        **delivery,
    ) -> BatchView:
        headers, extra = self._waiting(idempotency_key, wait_s)
        body = {"items": items, "shared": shared or {}, **{k: v for k, v in delivery.items() if v is not None}}
        return BatchView(**self._call("POST", "/v1/batches", json=body, headers=headers, **extra).json())

    def batch(self, batch_id: str) -> BatchView:
        return BatchView(**self._call("GET", f"/v1/batches/{batch_id}").json())

    def cancel_batch(self, batch_id: str) -> BatchView:
        return BatchView(**self._call("POST", f"/v1/batches/{batch_id}/cancel").json())

    # Events
    def events(self, job_id: str | None = None, last_event_id: str | None = None) -> Iterator[Event]:
        """One job's events (ending after its terminal one), or every job's of this key (never ending). A dropped
        connection is resumed with Last-Event-ID, so no status event is missed."""
        path = f"/v1/jobs/{job_id}/events" if job_id else "/v1/events"
        while True:
            headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
            try:
                with connect_sse(self.http, "GET", path, headers=headers, timeout=None) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        self._raise_for(source.response)
                    for sse in source.iter_sse():
                        data = json.loads(sse.data)
                        if sse.id:
                            last_event_id = sse.id
                        event = Event(
                            sse.event, data.pop("job_id"), data.pop("status"), int(sse.id) if sse.id else None, data
                        )
                        yield event
                        if job_id and event.terminal:
                            return
                if job_id:
                    return  # the server ended the stream: the job had finished before it began
            except httpx.TransportError:
                time.sleep(1.0)  # reconnect and resume after the last event seen

    def _raise_for(self, resp: httpx.Response) -> None:
        req = resp.request
        self._call(req.method, req.url.raw_path.decode())  # the same request, as a plain call: raises its error
        raise ApiError(f"{resp.status_code} on the event stream")

    def wait(self, job_id: str, on_event: Callable[[Event], None] | None = None) -> JobView:
        """Follow the job's events until it finishes; returns its final view."""
        for event in self.events(job_id):
            if on_event is not None:
                on_event(event)
        return self.get(job_id)

"""The job commands: submit (one prompt or a file of them), watch, status, jobs, cancel, retry, result, prune.

They go through workers.backend: the gateway over HTTP when ADQ_API_URL is set, else the library in-process.
``--wait`` and ``watch`` show a live progress line fed by the job's event stream."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from shared.core.errors import InputError
from workers.backend import no_worker_hint, open_backend

SHOWN = (
    "prompt",
    "preset",
    "priority",
    "k",
    "sigma",
    "strategy",
    "student_score",
    "tau",
    "teacher_used",
    "total_steps",
    "final_image_key",
    "steps_done",
    "error",
)


def _options(a) -> dict:
    from shared.jobs.schema import JobOptions

    options = {name: getattr(a, name) for name in JobOptions.model_fields}
    return options | {"priority": a.priority, "webhook_url": a.webhook_url}


def _show(view, as_json: bool) -> None:
    if as_json:
        print(json.dumps(view.to_json(), default=str))
        return
    print(f"{view.id}  {view.status.value}")
    for name in SHOWN:
        value = getattr(view, name)
        if value is not None:
            print(f"  {name}: {getattr(value, 'value', value)}")


class Progress:
    """One status line on stderr (a tqdm bar): stage, position, ETA; and, within seconds, a hint when the job
    waits on a queue no live worker serves."""

    def __init__(self, job_id: str, quiet: bool = False):
        from tqdm import tqdm

        self.bar = tqdm(total=None, desc=job_id[:8], bar_format="{desc}{postfix} [{elapsed}]", file=sys.stderr)
        self.bar.disable = quiet
        self.hinted = False
        self.started = time.monotonic()

    def __call__(self, event) -> None:
        d = event.data
        parts = [event.status]
        if d.get("position") is not None:
            parts.append(f"{d['position']} ahead")
        if d.get("eta_s") is not None:
            parts.append(f"eta {d['eta_s']:.0f}s")
        self.bar.set_postfix_str(", ".join(parts))
        if not self.hinted and event.type == "progress":
            hint = no_worker_hint(event)
            if hint:
                self.hinted = True
                self.bar.write(f"adq: {hint}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _follow(backend, job_id: str, timeout: float | None, quiet: bool):
    progress = Progress(job_id, quiet)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for event in backend.events(job_id):
            progress(event)
            if event.terminal:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {event.status} after {timeout} s")
    finally:
        progress.close()
    return backend.get(job_id)


def _submit(a) -> int:
    with open_backend() as backend:
        if a.file:
            return _submit_file(a, backend)
        if not a.prompt:
            raise InputError("give a prompt, or --file PROMPTS")
        view = backend.submit(a.prompt, idempotency_key=a.idempotency_key, **_options(a))
        if a.wait:
            view = _follow(backend, view.id, a.timeout, a.json)
        _show(view, a.json)
    return 0 if view.status != "failed" else 1


def _submit_file(a, backend) -> int:
    """One batch from a file with one prompt per line (blank lines and lines starting with # are skipped)."""
    try:
        lines = Path(a.file).read_text().splitlines()
    except OSError as exc:
        raise InputError(f"--file {a.file}: {exc.strerror}") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    options = _options(a)
    delivery = {k: options.pop(k) for k in ("priority", "webhook_url")}
    batch = backend.submit_batch(
        [{"prompt": p} for p in prompts],
        shared={k: v for k, v in options.items() if v is not None},
        idempotency_key=a.idempotency_key,
        **delivery,
    )
    if a.wait:
        views = [_follow(backend, job_id, a.timeout, True) for job_id in batch.job_ids]
        failed = sum(v.status == "failed" for v in views)
    else:
        views, failed = batch.jobs, 0
    if a.json:
        print(json.dumps({"batch_id": batch.id, "jobs": [v.to_json() for v in views]}, default=str))
    else:
        print(f"batch {batch.id}: {len(batch.job_ids)} jobs")
        for v in views:
            print(f"  {v.id}  {v.status.value}  {v.prompt[:60]}")
    return 1 if failed else 0


def _watch(a) -> int:
    with open_backend() as backend:
        view = _follow(backend, a.job_id, a.timeout, a.json)
        _show(view, a.json)
    return 0 if view.status != "failed" else 1


def _on_job(method: str):
    """`adq status|cancel|retry JOB_ID`: one backend call on the job, then its view."""

    def command(a) -> int:
        with open_backend() as backend:
            _show(getattr(backend, method)(a.job_id), a.json)
        return 0

    return command


_status, _cancel, _retry = _on_job("get"), _on_job("cancel"), _on_job("retry")


def _jobs(a) -> int:
    with open_backend() as backend:
        views, cursor = backend.list(status=a.status, limit=a.limit, cursor=a.cursor)
    if a.json:
        print(json.dumps({"jobs": [v.to_json() for v in views], "next_cursor": cursor}, default=str))
        return 0
    for v in views:
        print(f"{v.id}  {v.status.value:<16} {v.times['created_at']}  {v.prompt[:50]}")
    if cursor:
        print(f"more: adq jobs --cursor {cursor}")
    return 0


def _result(a) -> int:
    with open_backend() as backend:
        data = backend.image(a.job_id, "student") if a.student else backend.image(a.job_id)
    Path(a.output).write_bytes(data)
    print(f"wrote {len(data)} bytes to {a.output}")
    return 0


def _prune(a) -> int:
    from shared.jobs.retention import prune

    while True:
        n = prune(ttl_s=a.ttl, limit=a.limit, dry_run=a.dry_run)
        print(f"{'would expire' if a.dry_run else 'expired'} {n} jobs")
        if not a.every:
            return 0
        time.sleep(a.every)

"""The job commands: submit (one prompt or a file of them), watch, status, jobs, cancel, retry, result, prune.

They go through adq.cli.backend: the gateway over HTTP when ADQ_API_URL is set, else the library in-process.
``--wait`` and ``watch`` show a live progress line fed by the job's event stream."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from adq.cli.backend import no_worker_hint, open_backend
from adq.core.errors import InputError
from adq.jobs.priority import PRIORITIES

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
    from adq.jobs.schema import JobOptions

    options = {name: getattr(a, name) for name in JobOptions.model_fields}
    return options | {"priority": a.priority, "webhook_url": a.webhook_url}


def _outputs(a) -> dict:
    return {} if a.num_outputs is None else {"num_outputs": a.num_outputs}


def _show(view, as_json: bool) -> None:
    if as_json:
        print(json.dumps(view.to_json(), default=str))
        return
    print(f"{view.id}  {view.status.value}")
    for name in SHOWN:
        value = getattr(view, name)
        if value is not None:
            print(f"  {name}: {getattr(value, 'value', value)}")
    if view.num_outputs > 1:
        for out in view.outputs:
            print(f"  output {out.id} (seed {out.seed}): {out.status.value} {out.final_image_key or ''}".rstrip())


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


def submit(a) -> int:
    with open_backend() as backend:
        if a.file:
            return _submit_file(a, backend)
        if not a.prompt:
            raise InputError("give a prompt, or --file PROMPTS")
        view = backend.submit(a.prompt, idempotency_key=a.idempotency_key, **_options(a), **_outputs(a))
        if a.wait is not None:
            view = _wait(backend, view, a)
        _show(view, a.json)
    return 0 if view.status != "failed" else 1


def _wait(backend, view, a):
    """``--wait``: follow every image of the request until it ends (--timeout); ``--wait N``: at most N seconds,
    then show the job as it is (hosted APIs' synchronous wait: running out is not an error)."""
    ids = [o.id for o in backend.get(view.id).outputs] or [view.id]
    ends_at = time.monotonic() + (a.wait if a.wait > 0 else a.timeout)
    for job_id in ids:
        try:
            _follow(backend, job_id, max(0.0, ends_at - time.monotonic()), a.json)
        except TimeoutError:
            if a.wait <= 0:
                raise
            break
    return backend.get(view.id)


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
    if a.wait is not None:
        views = [_follow(backend, job_id, a.wait if a.wait > 0 else a.timeout, True) for job_id in batch.job_ids]
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


def watch(a) -> int:
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


status, cancel, retry = _on_job("get"), _on_job("cancel"), _on_job("retry")


def jobs(a) -> int:
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


def result(a) -> int:
    with open_backend() as backend:
        data = backend.image(a.job_id, "student") if a.student else backend.image(a.job_id)
    Path(a.output).write_bytes(data)
    print(f"wrote {len(data)} bytes to {a.output}")
    return 0


def prune(a) -> int:
    from adq.jobs.retention import prune

    while True:
        n = prune(ttl_s=a.ttl, limit=a.limit, dry_run=a.dry_run)
        print(f"{'would expire' if a.dry_run else 'expired'} {n} jobs")
        if not a.every:
            return 0
        time.sleep(a.every)


FLAGS = {"init_image": "--image", "control_image": "--control"}
SHORT = {  # hosted APIs' names, beside ours
    "output_format": ["--format"],
    "output_quality": ["--quality"],
    "negative_prompt": ["--negative"],
    "aspect_ratio": ["--aspect"],
}


def add_job_options(p: argparse.ArgumentParser) -> None:
    """One flag per settable job parameter, generated from the schema (its type, choices and description)."""
    import enum
    import typing

    from adq.jobs.schema import JobOptions

    for name, field in JobOptions.model_fields.items():
        kind = next(t for t in typing.get_args(field.annotation) if t is not type(None))
        if typing.get_origin(kind) is typing.Annotated:  # the preset: a name checked when the job is made
            kind = typing.get_args(kind)[0]
        flag = FLAGS.get(name) or "--" + name.replace("_", "-")
        if name in FLAGS:  # an image: a file (uploaded first), an upload id, an https URL or a data: URI
            role = "image-to-image's input image" if name == "init_image" else "the ControlNet's control image"
            help_ = f"{role}: a FILE (uploaded first), an upload id, an https URL or a data: URI"
            p.add_argument(flag, dest=name, metavar="FILE", help=help_)
        elif isinstance(kind, type) and issubclass(kind, enum.Enum):
            p.add_argument(flag, choices=[m.value for m in kind], help=field.description)
        elif typing.get_origin(kind) is typing.Literal:
            p.add_argument(flag, *SHORT.get(name, []), choices=typing.get_args(kind), help=field.description)
        else:
            p.add_argument(flag, *SHORT.get(name, []), type=kind, help=field.description)


def register(sub) -> None:
    p = sub.add_parser("submit", help="enqueue a text-to-image job (or a batch, with --file)")
    p.add_argument("prompt", nargs="?")
    add_job_options(p)
    p.add_argument("--priority", choices=PRIORITIES, help="queue priority (default normal)")
    p.add_argument("--webhook-url", help="POSTed a signed event when the job finishes")
    p.add_argument("--file", help="submit one batch: a file with one prompt per line")
    p.add_argument("--idempotency-key")
    p.add_argument("--n", "--num-outputs", dest="num_outputs", type=int, help="images to make, 1-4 (one job each)")
    p.add_argument(
        "--wait",
        nargs="?",
        const=0.0,
        type=float,
        metavar="SECONDS",
        help="show progress until the job finishes (up to --timeout); with SECONDS, at most that long",
    )
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=submit)

    p = sub.add_parser("watch", help="follow a job's events with a live progress line until it finishes")
    p.add_argument("job_id")
    p.add_argument("--timeout", type=float)
    p.add_argument("--json", action="store_true", help="no progress line; print the final job as JSON")
    p.set_defaults(fn=watch)

    p = sub.add_parser("jobs", help="list jobs, newest first")
    p.add_argument("--status", action="append", help="only this status (repeatable)")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--cursor", help="next page (printed after a full page)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=jobs)

    p = sub.add_parser("prune", help="delete images of jobs finished over ADQ_RESULT_TTL_S ago; mark them expired")
    p.add_argument("--ttl", type=float, help="seconds (default ADQ_RESULT_TTL_S)")
    p.add_argument("--limit", type=int, default=1000, help="most jobs per pass")
    p.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    p.add_argument("--every", type=float, help="run again every this many seconds (a scheduler's loop)")
    p.set_defaults(fn=prune, service=True)

    for name, fn, helptext in (
        ("status", status, "show a job"),
        ("cancel", cancel, "cancel an unfinished job"),
        ("retry", retry, "restart a failed job at the stage that failed, fresh budgets"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("job_id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(fn=fn)

    p = sub.add_parser("result", help="download a job's image")
    p.add_argument("job_id")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--student", action="store_true", help="the student image instead of the final one")
    p.set_defaults(fn=result)

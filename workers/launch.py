"""Start a Celery worker bound to one queue, with settings that are safe for GPUs.

Two designs (ADQ_WORKER_DESIGN):

- overlapped (the default): Celery's threads pool runs ADQ_WORKER_THREADS jobs at once in one process, and their
  model calls take turns on the process's one model thread (adq.jobs.lane). Nothing forks, so CUDA is safe; the
  models load once, on first use; the lane enforces the hard time limits (Celery's threads pool has none) by
  exiting the process when a model call outlives them. One process per GPU.
- serial: the prefork pool, one job at a time per child. Its parent never imports torch or touches CUDA (CUDA does
  not survive fork), and prefork enforces the hard time limits. One child per GPU.
"""

from __future__ import annotations

from adq.core.config import get_settings
from adq.core.constants import WEBHOOK_QUEUE
from adq.core.errors import InputError
from adq.jobs.stage import STAGES
from adq.method.presets import get_preset

POOLS = {stage.name: stage.queue for stage in STAGES} | {"webhooks": WEBHOOK_QUEUE}
# Jobs in flight per overlapped worker, unless ADQ_WORKER_THREADS says. Enough that the lane always has the next
# job ready (`adq bench efficiency`: a 50 ms student needs about 12, a 200 ms teacher 3), and no more: each one is a
# reserved message that another worker cannot take.
THREADS = {"student": 12, "teacher": 3, "webhooks": 8}
IN_FLIGHT_PER_BATCH_SLOT = 3  # `adq bench batching`: two left the lane idle while a batch's jobs were stored


def default_threads(pool: str) -> int:
    """Enough jobs in flight for a batch to form while the last one runs: three per slot of the default preset's
    batch for this pool (one batch running, one waiting, one being stored), and never fewer than THREADS."""
    from adq.method.presets import get_preset

    s = get_settings()
    if pool not in ("student", "teacher") or s.deterministic:
        return THREADS[pool]
    batch = get_preset(s.preset).batch
    most = (s.student_batch_max or batch.student) if pool == "student" else (s.teacher_batch_max or batch.teacher)
    return max(THREADS[pool], IN_FLIGHT_PER_BATCH_SLOT * most)


def worker_argv(
    pool: str,
    *,
    concurrency: int | None = None,
    loglevel: str = "INFO",
    hostname: str | None = None,
    queues: str | None = None,
    presets: list[str] | None = None,
) -> list[str]:
    """``concurrency``: jobs in flight (threads) when overlapped, pool processes when serial. ``presets``: serve
    only these (their queues, adq.jobs.routes); None: every queue."""
    if pool not in POOLS:
        raise InputError(f"unknown worker pool {pool!r}; choose one of {', '.join(POOLS)}")
    s = get_settings()
    if concurrency is not None and concurrency < 1:
        raise InputError(f"--concurrency={concurrency} must be at least 1")
    kind, default = (
        ("threads", s.worker_threads or default_threads(pool)) if s.worker_design == "overlapped" else ("prefork", 1)
    )
    from adq.jobs.routes import worker_queues

    queues = queues or ",".join(worker_queues(POOLS[pool], presets))
    argv = ["worker", "-Q", queues, "-n", hostname or f"{pool}@%h", "--pool", kind]
    argv += ["--concurrency", str(concurrency or default), "--loglevel", loglevel]
    if get_settings().send_events:
        argv.append("--task-events")
    if get_settings().broker_kind == "filesystem":
        # The filesystem transport has no fanout exchange, so broadcast features have nothing to talk over.
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    else:
        argv += ["--without-gossip"]
    return argv


def preflight(pool: str, presets: list[str] | None = None) -> None:
    """Fail at start-up, not on the first job, when a served preset's weights are missing (the default preset's,
    when none is named). Checks paths only: nothing is imported that could initialise CUDA in the parent."""
    from adq.method.models.weights import check_available

    for name in presets or [get_settings().preset]:
        preset = get_preset(name)
        specs = {"student": [preset.student], "teacher": [preset.teacher]}.get(pool, [])  # webhooks load none
        for spec in specs:
            if not spec.source.startswith(("tiny:", "null:")):
                check_available(spec)


def serve_pipeline(target: str) -> None:
    """Load a Python pipeline object (``module:attr``) into this process and publish its preset. Only the
    overlapped design can: it runs the models in this very process, where the serial design's parent must stay
    free of torch (CUDA does not survive fork)."""
    if get_settings().worker_design != "overlapped":
        raise InputError("--pipeline serves the object in this process: use ADQ_WORKER_DESIGN=overlapped")
    from adq.jobs.db import declared
    from adq.jobs.db.migrate import upgrade
    from adq.method import adaptive
    from adq.method.models.device import configure_torch

    # Before the object is built: its calibration runs here, and on a shared host two workers at torch's default
    # thread count each spin on the other's cores (a tiny calibration took 2.9 s a step instead of 0.1 in CI).
    configure_torch()
    pipeline = adaptive.load(target)
    for pipe in (pipeline.student.pipe, pipeline.teacher.pipe):
        pipe.set_progress_bar_config(disable=True)  # a bar per image would land between the JSON log lines
    upgrade()
    calibration = declared.publish(pipeline)
    print(f"serving pipeline object {target} as preset {pipeline.name!r} (calibration {calibration})", flush=True)


def run(pool: str, pipeline: str | None = None, presets: list[str] | None = None, **kwargs) -> None:
    if pipeline:
        serve_pipeline(pipeline)
    else:
        preflight(pool, presets)
    from adq.tasks import app, tracing
    from adq.tasks.app import ensure_broker_folders
    from adq.tasks.signals import warm_on_start

    tracing.setup(f"adq-{pool}")
    ensure_broker_folders()
    warm_on_start(pool, presets)
    app.worker_main(worker_argv(pool, presets=presets, **kwargs))

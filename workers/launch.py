"""Start a Celery worker bound to one queue, with settings that are safe for GPUs.

The worker uses the prefork pool: its parent process never imports torch or touches CUDA (CUDA does not survive
fork), the child loads models lazily on its first task and keeps them, and unlike the solo pool prefork enforces
the hard time limits. One child per GPU; scale out with more worker processes or pods.
"""

from __future__ import annotations

from shared.config import get_settings
from shared.constants import WEBHOOK_QUEUE
from shared.errors import InputError
from shared.presets import get_preset
from shared.stage import STAGES

POOLS = {stage.name: stage.queue for stage in STAGES} | {"webhooks": WEBHOOK_QUEUE}


def worker_argv(
    pool: str, *, concurrency: int = 1, loglevel: str = "INFO", hostname: str | None = None, queues: str | None = None
) -> list[str]:
    if pool not in POOLS:
        raise InputError(f"unknown worker pool {pool!r}; choose one of {', '.join(POOLS)}")
    argv = [
        "worker",
        "-Q",
        queues or POOLS[pool],
        "-n",
        hostname or f"{pool}@%h",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
    ]
    if get_settings().send_events:
        argv.append("--task-events")
    if get_settings().broker_kind == "filesystem":
        # The filesystem transport has no fanout exchange, so broadcast features have nothing to talk over.
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    else:
        argv += ["--without-gossip"]
    return argv


def preflight(pool: str) -> None:
    """Fail at start-up, not on the first job, when the default preset's weights are missing. Checks paths only:
    nothing is imported that could initialise CUDA in the parent."""
    from shared.models.weights import check_available

    preset = get_preset(get_settings().preset)
    specs = {"student": [preset.student], "teacher": [preset.teacher]}.get(pool, [])  # the webhook pool loads none
    for spec in specs:
        if not spec.source.startswith(("tiny:", "null:")):
            check_available(spec)


def run(pool: str, **kwargs) -> None:
    preflight(pool)
    from tasks import app
    from tasks.app import ensure_broker_folders

    ensure_broker_folders()
    app.worker_main(worker_argv(pool, **kwargs))

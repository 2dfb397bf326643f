"""The one worker context: what a worker process holds for every job it runs, built once per process (after the
fork, in a prefork child) and reached through ``current()``, as arq hands its functions one ``ctx``.

It assembles the rooms: the settings, the database engine, the storage client, the model registry, the model lane,
the decider (live tau and the controller's k) and the metrics client. The stage library takes it as an argument
(``adq.jobs.runner.run(stage, job_id, who, ctx)``), so ``jobs`` never imports the control plane. Everything in it
is held by ``adq.core.process``, and ``reset()`` is the one reset: a test that changed the settings calls it, and
the next ``current()`` builds a context from the new ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from adq.control.decision import Decider
from adq.core import process
from adq.core.config import Settings, get_settings
from adq.jobs import metrics
from adq.jobs.db.session import get_engine
from adq.jobs.holders import holder_id
from adq.jobs.lane import InlineLane, ModelLane
from adq.jobs.stage import STUDENT, TEACHER
from adq.jobs.storage import Storage, get_storage
from adq.method.models import registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    storage: Storage
    models: ModuleType  # adq.method.models.registry: student(preset), teacher(preset), estimator(preset)
    lane: InlineLane | ModelLane
    decider: Decider
    metrics: Any  # the Redis client the workers count their work in, or None (no Redis)

    @property
    def engine(self):
        return get_engine()


def _batch_limits(key) -> tuple[int, float]:
    """(most calls in one batch, longest wait for one to fill) for a lane key (kind, preset, ...): the preset's
    batch sizes unless a setting overrides them, and 1 under ADQ_DETERMINISTIC."""
    from adq.method.presets import get_preset

    s = get_settings()
    kind = key[0]
    if kind == "score":
        return s.score_batch_max, 0.0  # only what is ready: scoring never waits for company
    if kind not in ("generate", "improve") or s.deterministic:
        return 1, 0.0
    try:
        batch = get_preset(key[1]).batch
    except Exception:  # a preset only a pipeline declares: batched as the defaults say; never break the lane
        from adq.method.presets import BatchSpec

        batch = BatchSpec()
    if kind == "generate":
        return s.student_batch_max or batch.student, s.batch_wait_ms / 1000
    return s.teacher_batch_max or batch.teacher, s.batch_wait_ms / 1000


def _lane(settings: Settings) -> InlineLane | ModelLane:
    if settings.worker_design == "serial":
        return InlineLane()
    return ModelLane(lambda key: _batch_limits(key)[0], lambda key: _batch_limits(key)[1])


def _build() -> WorkerContext:
    from adq.jobs import model_metrics
    from adq.method.models import residency

    if model_metrics.report not in residency.REPORTERS:
        residency.REPORTERS.append(model_metrics.report)
    settings = get_settings()
    return WorkerContext(
        settings=settings,
        storage=get_storage(),
        models=registry,
        lane=_lane(settings),
        decider=Decider(holder_id(None)),
        metrics=metrics.client(),
    )


def current() -> WorkerContext:
    """This process's context, built on first use."""
    return process.once(("context",), _build, close=lambda ctx: ctx.lane.stop())


def reset() -> None:
    """The one reset: drop the context and every per-process resource (settings, engine, storage, models, lane,
    clients); the next use builds them from the current settings."""
    process.reset()


def warm(pool: str, presets: list[str]) -> None:
    """Load and run the pool's models of each preset once on the model lane before the worker consumes, so its
    first job is not a cold one (adq.method.models.warmup); or, with ADQ_WARM_UP=background, only load them while
    it connects (its first jobs queue behind the loads on the lane). Only for the overlapped design: a prefork
    child must start within seconds, so the serial design loads on first use. A failure is logged; the first job
    meets it again."""
    ctx = current()
    if pool not in (STUDENT.name, TEACHER.name) or ctx.settings.worker_design == "serial":
        return
    from adq.method.models import warmup

    before = ctx.settings.warm_up == "before_ready"
    future = ctx.lane.submit(
        ("warm", pool), lambda b: [warmup.warm(pool, presets, registry, run=before)] * len(b), None
    )
    future.add_done_callback(_log_warm_error)
    if before:
        try:
            future.result()
        except Exception:  # logged by the callback
            pass


def _log_warm_error(future) -> None:
    if future.exception() is not None:  # the first job meets the same error and fails with it
        log.error("loading the models at start-up failed: %s", future.exception())

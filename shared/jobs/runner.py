"""The two queue stages as plain functions, in numbered steps: claim, generate, score, decide, store, record.

``run(stage, job_id, ...)`` is all a task calls: it returns an ``Outcome`` whose ``route`` tells the task which
message to send next (the one thing left to the queue code). Nothing here imports Celery. The database session is
never held across inference, and an outage after the claim releases the claim before it reaches the task.

Model calls go through the process's model lane (shared.jobs.lane): on the calling thread in the serial design, on
the one model thread in the overlapped design, where several jobs' other steps run beside it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

from shared.control.decision import Decider
from shared.core import logs
from shared.core.config import get_settings
from shared.core.errors import AttemptsExhausted, Cancelled, Interrupted, TransientError
from shared.core.status import TERMINAL, Route
from shared.jobs import metrics
from shared.jobs.db import jobs
from shared.jobs.db.jobs import Claim
from shared.jobs.db.models import Job
from shared.jobs.holders import Claimant, holder_id, running_here
from shared.jobs.lane import InlineLane, ModelLane
from shared.jobs.stage import STUDENT, TEACHER, Stage
from shared.jobs.storage import decode_png, encode_png, get_storage, job_key
from shared.method import cancel, cascade
from shared.method.models import registry
from shared.method.params import JobParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one run of a stage did."""

    job: Job | None  # the row as the run left it; None when it did nothing (a duplicate, cancelled, taken over)
    route: Route | None = None  # set when the run recorded a result: where the job goes next

    @property
    def finished(self) -> bool:
        return self.job is not None and self.job.status in TERMINAL


SKIPPED = Outcome(None)


_per_process: dict[str, tuple[int, object]] = {}
_per_process_lock = threading.Lock()


def _own(name: str, make: Callable[[], object]):
    """This process's one ``name``, made on first use (after the fork: a prefork child gets its own)."""
    with _per_process_lock:
        held = _per_process.get(name)
        if held is None or held[0] != os.getpid():
            held = _per_process[name] = (os.getpid(), make())
        return held[1]


def reset() -> None:
    """Drop this process's lane and decider (a test that changed the settings); the next use makes new ones."""
    with _per_process_lock:
        held = dict(_per_process)
        _per_process.clear()
    lane_held = held.get("lane")
    if lane_held is not None and lane_held[0] == os.getpid():
        lane_held[1].stop()


def decider() -> Decider:
    return _own("decider", lambda: Decider(holder_id(None)))


def _batch_limits(key) -> tuple[int, float]:
    s = get_settings()
    return {
        "generate": (s.student_batch_max, s.student_batch_wait_ms / 1000),
        "score": (s.score_batch_max, 0.0),  # only what is ready: scoring never waits for company
    }.get(key[0], (1, 0.0))


def lane() -> InlineLane | ModelLane:
    def make():
        if get_settings().worker_design == "serial":
            return InlineLane()
        return ModelLane(lambda key: _batch_limits(key)[0], lambda key: _batch_limits(key)[1])

    return _own("lane", make)


def warm(pool: str, preset: str) -> None:
    """Load the pool's models on the model lane now, while the worker connects, instead of in its first jobs. Only
    for the overlapped design: a prefork child must start within seconds, so the serial design loads on first use."""
    loaders = {STUDENT.name: (registry.student, registry.estimator), TEACHER.name: (registry.teacher,)}.get(pool)
    if not loaders or get_settings().worker_design == "serial":
        return

    def load(batch):
        for loader in loaders:
            loader(preset)
        return batch

    lane().submit(("warm", pool), load, None).add_done_callback(_log_warm_error)


def _log_warm_error(future) -> None:
    if future.exception() is not None:  # the first job meets the same error and fails with it
        log.error("loading the models at start-up failed: %s", future.exception())


def _generate(preset: str, job_id: str | None, batch: list[JobParams]) -> list:
    student = registry.student(preset)
    if len(batch) == 1:  # one job: a cancel stops it after the step it is in (shared.method.cancel)
        with cancel.watching(job_id, jobs.is_cancelled) if job_id else nullcontext():
            return [cascade.generate(student, batch[0])]
    p = batch[0]
    outs = student.generate_batch(
        [q.prompt for q in batch],
        [q.seed for q in batch],
        steps=p.student_steps,
        guidance=p.student_guidance,
        width=p.width,
        height=p.height,
    )
    return [cascade.GenerateResult(o.image, o.steps, 0.0) for o in outs]


def _score(preset: str, batch: list[tuple[str, object]]) -> list[float]:
    prompts, images = zip(*batch)
    return registry.estimator(preset).score(list(prompts), list(images))


def student(claim: Claim) -> Outcome:
    params = JobParams.of(claim.job)
    limit = STUDENT.time_limit_s()
    # 2. Generate: jobs with the same student settings may share a batch
    generate = partial(_generate, params.preset, claim.job_id)
    gen = lane().call(("generate", params.student_hash()), generate, params, timeout_s=limit)
    # 3. Score: images that are ready together are scored together
    image = gen.value.image
    scored = lane().call(
        ("score", params.preset), partial(_score, params.preset), (params.prompt, image), timeout_s=limit
    )
    # 4. Decide: the one place "score < tau" becomes a route (with live tau and the controller's k)
    decision = decider().decide(params, claim.job.calibration_id, scored.value)
    # 5. Store
    key = job_key(claim.job_id, STUDENT.image)
    get_storage().put(key, encode_png(image))
    # 6. Record: only the holder of the claim's fence can
    row = jobs.record_student(
        claim,
        decision.route,
        score=scored.value,
        student_key=key,
        steps=gen.value.steps,
        generate_s=gen.seconds,
        score_s=scored.seconds,
        tau=decision.tau,
        effective_k=decision.k,
        tau_source=decision.tau_source,
        control_policy=decision.control_policy,
        route_reason=decision.reason,
    )
    if row is None:
        return SKIPPED
    metrics.observe(metrics.stage_samples(STUDENT.name, row))
    return Outcome(row, decision.route)


def teacher(claim: Claim) -> Outcome:
    params = JobParams.of(claim.job)
    storage = get_storage()
    # 2. Generate: refine the student's image, or regenerate
    student_image = decode_png(storage.get(claim.job.student_image_key))

    def improve(_batch):
        with cancel.watching(claim.job_id, jobs.is_cancelled):
            return [cascade.improve(registry.teacher(params.preset), student_image, params)]

    # a key of its own: teacher runs are not batched
    better = lane().call(("improve", claim.job_id), improve, None, timeout_s=TEACHER.time_limit_s())
    # 3-4. Score and decide: nothing to do, the teacher's image is final
    # 5. Store
    key = job_key(claim.job_id, TEACHER.image)
    storage.put(key, encode_png(better.value.image))
    # 6. Record
    row = jobs.record_teacher(claim, final_key=key, steps=better.value.steps, teacher_s=better.seconds)
    if row is None:
        return SKIPPED
    metrics.observe(metrics.stage_samples(TEACHER.name, row))
    return Outcome(row, Route.FINISH)


STEPS: dict[Stage, Callable[[Claim], Outcome]] = {STUDENT: student, TEACHER: teacher}


def run(stage: Stage, job_id: str, who: Claimant) -> Outcome:
    """Run one stage of one job. Raises Interrupted (transient) after giving the claim back when an outage hits;
    any other error propagates, and the caller fails the job."""
    with running_here(job_id) as mine:
        if not mine:
            return SKIPPED  # a duplicate message: another thread of this process runs the job
        # 1. Claim: at most one live attempt per job and stage
        try:
            claim = jobs.claim(job_id, stage, who)
        except AttemptsExhausted:
            return Outcome(jobs.get(job_id))
        if claim is None:
            return SKIPPED
        try:
            with logs.job_context(job_id=job_id, stage=stage.name, attempt=claim.attempt):
                return STEPS[stage](claim)
        except Cancelled as exc:  # the model stopped at a step boundary; the job is already cancelled
            jobs.note_cancelled(job_id, exc.steps_done)
            log.info("job %s: %s stage stopped by a cancel after %s steps", job_id, stage, exc.steps_done)
            return SKIPPED
        except TransientError as exc:
            raise _interrupted(claim, exc) from exc


def _interrupted(claim: Claim, exc: TransientError) -> Interrupted:
    error = f"{type(exc).__name__}: {exc}"
    try:
        released = jobs.release(claim, error) is not None
    except TransientError:  # the database is out too: the claim stays, and the retry may take it over
        released = False
    return Interrupted(error, fence=None if released else claim.fence)

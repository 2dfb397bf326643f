"""The two queue stages as plain functions, in numbered steps: claim, generate, score, decide, store, record.

``run(stage, job_id, ...)`` is all a task calls: it returns an ``Outcome`` whose ``route`` tells the task which
message to send next (the one thing left to the queue code). Nothing here imports Celery. The database session is
never held across inference, and an outage after the claim releases the claim before it reaches the task.

Model calls go through the process's model lane (adq.jobs.lane): on the calling thread in the serial design, on
the one model thread in the overlapped design, where several jobs' other steps run beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from adq.core import logs
from adq.core.config import Settings
from adq.core.errors import AttemptsExhausted, Cancelled, Interrupted, TransientError
from adq.core.status import TERMINAL, Route
from adq.jobs import inputs, metrics
from adq.jobs.db import jobs
from adq.jobs.db.jobs import Claim
from adq.jobs.db.models import Job
from adq.jobs.holders import Claimant, running_here
from adq.jobs.lane import InlineLane, ModelLane
from adq.jobs.stage import STUDENT, TEACHER, Stage
from adq.jobs.storage import CONTENT_TYPES, Storage, decode_png, encode, encode_png, job_key
from adq.method import cancel, cascade
from adq.method.models import safety
from adq.method.params import JobParams
from adq.method.presets import get_preset

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


class Context(Protocol):
    """What a stage needs from its worker process (adq.context.WorkerContext is the one made at start-up). A
    protocol, so this room does not import the control plane that builds the decider."""

    settings: Settings
    storage: Storage
    models: Any  # student(preset), teacher(preset), estimator(preset)
    lane: InlineLane | ModelLane
    decider: Any  # decide(params, calibration_id, score, owner) -> cascade.Decision


def _holding(fn):
    """A lane function that holds its preset's models while it runs (the memory budget evicts only idle ones)."""

    def held(models, preset: str, *args):
        with getattr(models, "using", lambda _preset: nullcontext())(preset):
            return fn(models, preset, *args)

    return held


@_holding
def _generate(models, preset: str, job_id: str | None, images: cascade.Inputs, batch: list[JobParams]) -> list:
    student = models.student(preset)
    if len(batch) == 1:  # one job: a cancel stops it after the step it is in (adq.method.cancel)
        with cancel.watching(job_id, jobs.is_cancelled) if job_id else nullcontext():
            return [cascade.generate(student, batch[0], images)]
    p = batch[0]
    outs = student.generate_batch(
        [q.prompt for q in batch],
        [q.seed for q in batch],
        steps=p.student_steps,
        guidance=p.student_guidance,
        width=p.width,
        height=p.height,
        **cascade.negative(p),
    )
    return [cascade.GenerateResult(o.image, o.steps, 0.0) for o in outs]


def _text_only(job) -> bool:
    """A job with no input image: the only kind that shares a model call (an input image is the job's own)."""
    return not job.init_image and not job.control_image


def _teacher_group(p: JobParams) -> tuple:
    """What must match for two jobs to share a teacher call: the strategy and its settings, and the student's size
    (a refinement starts from the student image)."""
    sigma = p.sigma if p.strategy == "refine" else None
    return (p.strategy, p.teacher_steps, sigma, p.teacher_guidance, p.width, p.height, p.negative_prompt)


@_holding
def _improve(models, preset: str, job_id: str, images: cascade.Inputs, batch: list[tuple[JobParams, Any]]) -> list:
    """One job alone can be stopped by a cancel between steps; in a batch of several, a cancelled job's result
    is dropped when its fenced record finds the job cancelled, and its neighbours run on."""
    teacher = models.teacher(preset)
    if len(batch) == 1:
        ((params, student_image),) = batch
        with cancel.watching(job_id, jobs.is_cancelled):
            return [cascade.improve(teacher, student_image, params, images)]
    return cascade.improve_batch(teacher, batch)


@_holding
def _score(models, preset: str, batch: list[tuple[str, object]]) -> list[float]:
    prompts, images = zip(*batch)
    return models.estimator(preset).score(list(prompts), list(images))


def _inputs(job) -> cascade.Inputs:
    """The job's input images from storage (an image-to-image or ControlNet job), decoded."""
    if _text_only(job):
        return cascade.NO_INPUTS
    load = partial(inputs.load, owner=job.owner)
    return cascade.Inputs(
        init=load(job.init_image) if job.init_image else None,
        control=load(job.control_image) if job.control_image else None,
    )


def student(claim: Claim, ctx: Context) -> Outcome:
    params = JobParams.of(claim.job)
    limit = STUDENT.time_limit_s(ctx.settings)
    # 2. Generate: jobs with the same student settings may share a batch (text only: an input image is the job's)
    text_only = _text_only(claim.job)
    shared = (params.student_hash(), params.negative_prompt)  # what jobs in one student call have in common
    lane_key = ("generate", params.preset, shared if text_only else claim.job_id)
    with ctx.lane.coming(lane_key) as token:  # a batch of this key forming meanwhile waits for this job
        images = _inputs(claim.job)
        generate = partial(_generate, ctx.models, params.preset, claim.job_id, images)
        gen = ctx.lane.call(lane_key, generate, params, timeout_s=limit, announced=token)
    # 3. Score: images that are ready together are scored together
    image = gen.value.image
    score = partial(_score, ctx.models, params.preset)
    scored = ctx.lane.call(("score", params.preset), score, (params.prompt, image), timeout_s=limit)
    # 4. Decide: the one place a job's score becomes a route (with live tau and the controller's k); the comparison
    # itself is percentiles.below_cutoff, which the benchmarks and the tune call too
    decision = ctx.decider.decide(params, claim.job.calibration_id, scored.value, claim.job.owner)
    # 5. Store: the student image as the estimator saw it, and, when it is final, in the job's output format
    key = job_key(claim.job_id, STUDENT.image, claim.fence)
    ctx.storage.put(key, encode_png(image))
    final_key, verdict = key, {}
    if decision.route is Route.FINISH:
        final, verdict = _screen(ctx, params, image, limit)
        if verdict.get("nsfw") or params.output_format != "png":
            final_key = _store_final(ctx.storage, claim, params, final)
    # 6. Record: only the holder of the claim's fence can
    row = jobs.record_student(
        claim,
        decision.route,
        score=scored.value,
        student_key=key,
        final_key=final_key,
        steps=gen.value.steps,
        generate_s=gen.seconds,
        score_s=scored.seconds,
        batch=gen.batch,
        tau=decision.tau,
        effective_k=decision.k,
        tau_source=decision.tau_source,
        control_policy=decision.control_policy,
        route_reason=decision.reason,
        frontier_point=decision.point,
        **verdict,
    )
    if row is None:
        return SKIPPED
    metrics.observe(metrics.stage_samples(STUDENT.name, row))
    return Outcome(row, decision.route)


def teacher(claim: Claim, ctx: Context) -> Outcome:
    params = JobParams.of(claim.job)
    if claim.job.frontier_point:  # the controller moved the job along the tuned frontier (adq.control.decision)
        moved = claim.job.frontier_point
        params = params.model_copy(
            update={key: moved[key] for key in ("strategy", "sigma", "teacher_steps") if moved[key]}
        )
    # 2. Generate: refine the student's image, or regenerate (in the job's mode: its input images too). Jobs with
    # the same teacher settings may share a batch (text only: an input image is the job's own)
    text_only = _text_only(claim.job)
    lane_key = ("improve", params.preset, _teacher_group(params) if text_only else claim.job_id)
    with ctx.lane.coming(lane_key) as token:  # a batch of this key forming while the image downloads waits for it
        student_image = decode_png(ctx.storage.get(claim.job.student_image_key))
        images = _inputs(claim.job)
        improve = partial(_improve, ctx.models, params.preset, claim.job_id, images)
        limit = TEACHER.time_limit_s(ctx.settings)
        better = ctx.lane.call(lane_key, improve, (params, student_image), timeout_s=limit, announced=token)
    # 3-4. Score and decide: nothing to do, the teacher's image is final
    # 5. Screen and store: a flagged image is withheld (its placeholder stored instead)
    final, verdict = _screen(ctx, params, better.value.image, limit)
    key = _store_final(ctx.storage, claim, params, final)
    # 6. Record
    row = jobs.record_teacher(
        claim, final_key=key, steps=better.value.steps, teacher_s=better.seconds, batch=better.batch, **verdict
    )
    if row is None:
        return SKIPPED
    metrics.observe(metrics.stage_samples(TEACHER.name, row))
    return Outcome(row, Route.FINISH)


def _screen(ctx: Context, params: JobParams, image, limit: float) -> tuple[Any, dict]:
    """The final image through the preset's safety filter, if it names one: the image to store, and the verdict
    to record (nothing when the filter is off)."""
    spec = get_preset(params.preset).safety
    if spec is None or ctx.models.safety(params.preset) is None:
        return image, {}
    check = partial(_check, ctx.models, params.preset)
    flagged = ctx.lane.call(("safety", params.preset), check, (params.prompt, image), timeout_s=limit).value
    verdict = {"nsfw": flagged, "safety_filter": spec.name}
    return (safety.placeholder(image, spec.placeholder) if flagged else image), verdict


@_holding
def _check(models, preset: str, batch: list[tuple[str, object]]) -> list[bool]:
    prompts, images = zip(*batch)
    return models.safety(preset).check(list(prompts), list(images))


def _store_final(storage: Storage, claim: Claim, params: JobParams, image) -> str:
    """The final image in the job's output format, under a key of its claim's fence."""
    key = job_key(claim.job_id, TEACHER.image, claim.fence, params.output_format)
    storage.put(key, encode(image, params.output_format, params.output_quality), CONTENT_TYPES[params.output_format])
    return key


STEPS: dict[Stage, Callable[[Claim, Context], Outcome]] = {STUDENT: student, TEACHER: teacher}


def run(stage: Stage, job_id: str, who: Claimant, ctx: Context) -> Outcome:
    """Run one stage of one job with the worker context ``ctx`` (the task passes adq.context.current()). Raises
    Interrupted (transient) after giving the claim back when an outage hits; any other error propagates, and the
    caller fails the job."""
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
                return STEPS[stage](claim, ctx)
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

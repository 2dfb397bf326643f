"""The two queue stages as plain functions, in numbered steps: claim, generate, score, decide, store, record.

``run(stage, job_id, ...)`` is all a task calls: it returns an ``Outcome`` whose ``route`` tells the task which
message to send next (the one thing left to the queue code). Nothing here imports Celery. The database session is
never held across inference, and an outage after the claim releases the claim before it reaches the task.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from shared import cascade
from shared.control.decision import Decider
from shared.db import jobs
from shared.db.jobs import Claim
from shared.db.models import Job
from shared.errors import AttemptsExhausted, Interrupted, TransientError
from shared.holders import Claimant, holder_id
from shared.models import registry
from shared.params import JobParams
from shared.stage import STUDENT, TEACHER, Stage
from shared.status import TERMINAL, Route
from shared.storage import decode_png, encode_png, get_storage, job_key


@dataclass(frozen=True)
class Outcome:
    """What one run of a stage did."""

    job: Job | None  # the row as the run left it; None when it did nothing (a duplicate, cancelled, taken over)
    route: Route | None = None  # set when the run recorded a result: where the job goes next

    @property
    def finished(self) -> bool:
        return self.job is not None and self.job.status in TERMINAL


SKIPPED = Outcome(None)


def decider() -> Decider:
    """This process's decider, made on first use (after the fork: a prefork child gets its own)."""
    global _decider
    if _decider is None or _decider[0] != os.getpid():
        _decider = (os.getpid(), Decider(holder_id(None)))
    return _decider[1]


_decider: tuple[int, Decider] | None = None


def student(claim: Claim) -> Outcome:
    params = JobParams.of(claim.job)
    # 2. Generate
    gen = cascade.generate(registry.student(params.preset), params)
    # 3. Score
    scored = cascade.score(registry.estimator(params.preset), params.prompt, gen.image)
    # 4. Decide: the one place "score < tau" becomes a route (with live tau and the controller's k)
    decision = decider().decide(params, claim.job.calibration_id, scored.score)
    # 5. Store
    key = job_key(claim.job_id, STUDENT.image)
    get_storage().put(key, encode_png(gen.image))
    # 6. Record: only the holder of the claim's fence can
    row = jobs.record_student(
        claim,
        decision.route,
        score=scored.score,
        student_key=key,
        steps=gen.steps,
        generate_s=gen.seconds,
        score_s=scored.seconds,
        threshold=decision.threshold,
        effective_k=decision.k,
        threshold_source=decision.threshold_source,
        control_policy=decision.control_policy,
        route_reason=decision.reason,
    )
    return Outcome(row, decision.route) if row is not None else SKIPPED


def teacher(claim: Claim) -> Outcome:
    params = JobParams.of(claim.job)
    storage = get_storage()
    # 2. Generate: refine the student's image, or regenerate
    student_image = decode_png(storage.get(claim.job.student_image_key))
    better = cascade.improve(registry.teacher(params.preset), student_image, params)
    # 3-4. Score and decide: nothing to do, the teacher's image is final
    # 5. Store
    key = job_key(claim.job_id, TEACHER.image)
    storage.put(key, encode_png(better.image))
    # 6. Record
    row = jobs.record_teacher(claim, final_key=key, steps=better.steps, teacher_s=better.seconds)
    return Outcome(row, Route.FINISH) if row is not None else SKIPPED


STEPS: dict[Stage, Callable[[Claim], Outcome]] = {STUDENT: student, TEACHER: teacher}


def run(stage: Stage, job_id: str, who: Claimant) -> Outcome:
    """Run one stage of one job. Raises Interrupted (transient) after giving the claim back when an outage hits;
    any other error propagates, and the caller fails the job."""
    # 1. Claim: at most one live attempt per job and stage
    try:
        claim = jobs.claim(job_id, stage, who)
    except AttemptsExhausted:
        return Outcome(jobs.get(job_id))
    if claim is None:
        return SKIPPED
    try:
        return STEPS[stage](claim)
    except TransientError as exc:
        raise _interrupted(claim, exc) from exc


def _interrupted(claim: Claim, exc: TransientError) -> Interrupted:
    error = f"{type(exc).__name__}: {exc}"
    try:
        released = jobs.release(claim, error) is not None
    except TransientError:  # the database is out too: the claim stays, and the retry may take it over
        released = False
    return Interrupted(error, fence=None if released else claim.fence)

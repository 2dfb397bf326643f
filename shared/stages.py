"""One queue stage each: claim the job, run its cascade step, store the image, record the result.

Tasks call these and decide only retry-or-route; the database session is never held across inference.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import cascade
from shared.config import settings
from shared.db import jobs
from shared.db.jobs import Claim
from shared.models import registry
from shared.params import JobParams
from shared.storage import decode_png, encode_png, get_storage, job_key


@dataclass(frozen=True)
class Outcome:
    route: str  # "done" | "teacher" | "skipped" (duplicate, cancelled, or taken over by a newer attempt)
    claim: Claim | None = None


def params_of(job) -> JobParams:
    return JobParams(**jobs.job_params(job))


def claim(job_id: str, stage: str, *, may_reclaim: bool, worker: str) -> Claim | None:
    limit = settings.student_time_limit_s if stage == "student" else settings.teacher_time_limit_s
    return jobs.claim(job_id, stage, may_reclaim=may_reclaim, worker=worker, lease_s=limit)


def student(claim_: Claim) -> Outcome:
    job = claim_.job
    params = params_of(job)
    gen = cascade.generate(registry.student(params.preset), params)
    scored = cascade.score(registry.estimator(params.preset), params.prompt, gen.image)
    decision = cascade.decide(scored.score, job.threshold, job.k)
    key = job_key(job.id, "student")
    get_storage().put(key, encode_png(gen.image))
    recorded = jobs.student_done(claim_, score=scored.score, teacher_used=decision.teacher_used, student_key=key,
                                 steps=gen.steps, generate_s=gen.seconds, score_s=scored.seconds)
    if not recorded:
        return Outcome("skipped", claim_)
    return Outcome("teacher" if decision.teacher_used else "done", claim_)


def teacher(claim_: Claim) -> Outcome:
    job = claim_.job
    params = params_of(job)
    storage = get_storage()
    student_image = decode_png(storage.get(job.student_image_key))
    better = cascade.improve(registry.teacher(params.preset), student_image, params)
    key = job_key(job.id, "final")
    storage.put(key, encode_png(better.image))
    recorded = jobs.teacher_done(claim_, final_key=key, steps=better.steps, teacher_s=better.seconds,
                                 total_steps=(job.student_steps_run or 0) + better.steps)
    return Outcome("done" if recorded else "skipped", claim_)


def backoff_s(retries: int) -> float:
    return min(settings.retry_backoff_max_s, settings.retry_backoff_s * 2 ** retries)

"""Thin tasks: decode the job id, call shared.stages, decide retry or route."""

from __future__ import annotations

import logging

from celery import Task
from celery.exceptions import Retry

from shared import stages
from shared.config import settings
from shared.constants import STUDENT_TASK, TEACHER_TASK
from shared.db import jobs
from shared.errors import AttemptsExhausted, TransientError
from tasks.app import app
from tasks.enqueue import notify, send_stage

log = logging.getLogger(__name__)


def _run(task: Task, job_id: str, stage: str) -> str:
    req = task.request
    # A redelivered or retried message means the previous holder of this stage is gone, so it may take over.
    may_reclaim = bool((req.delivery_info or {}).get("redelivered")) or req.retries > 0
    worker = f"{req.hostname or 'unknown'}"
    try:
        claim = stages.claim(job_id, stage, may_reclaim=may_reclaim, worker=worker)
    except AttemptsExhausted as exc:
        log.error("%s", exc)
        notify(jobs.get(job_id))
        return "failed"
    except TransientError as exc:
        raise task.retry(exc=exc, countdown=stages.backoff_s(req.retries), max_retries=settings.max_attempts)
    if claim is None:
        log.info("job %s %s: nothing to do (duplicate, finished, cancelled or out of attempts)", job_id, stage)
        return "skipped"
    try:
        outcome = stages.student(claim) if stage == "student" else stages.teacher(claim)
    except TransientError as exc:
        log.warning("job %s %s attempt %d: transient error, retrying: %s", job_id, stage, claim.attempt, exc)
        try:
            jobs.release(claim, f"{type(exc).__name__}: {exc}")
        except TransientError:
            pass  # the lease runs out and the sweeper re-sends it
        raise task.retry(exc=exc, countdown=stages.backoff_s(req.retries), max_retries=settings.max_attempts)
    except Retry:
        raise
    except Exception as exc:
        log.exception("job %s %s attempt %d failed", job_id, stage, claim.attempt)
        if jobs.fail(job_id, f"{stage}: {type(exc).__name__}: {exc}"):
            notify(jobs.get(job_id))
        return "failed"
    if outcome.route == "teacher":
        send_stage(job_id, "teacher")  # after the commit that made it teacher_queued
    elif outcome.route == "done":
        notify(claim.job)
    return outcome.route


@app.task(name=STUDENT_TASK, bind=True, time_limit=settings.student_time_limit_s,
          soft_time_limit=max(1, settings.student_time_limit_s - 10))
def student(self: Task, job_id: str) -> str:
    return _run(self, job_id, "student")


@app.task(name=TEACHER_TASK, bind=True, time_limit=settings.teacher_time_limit_s,
          soft_time_limit=max(1, settings.teacher_time_limit_s - 10))
def teacher(self: Task, job_id: str) -> str:
    return _run(self, job_id, "teacher")

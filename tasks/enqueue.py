"""Sending stage messages. Messages carry the job id only, never image bytes; the task id names job and stage."""

from __future__ import annotations

from shared.constants import (STUDENT_QUEUE, STUDENT_TASK, TEACHER_QUEUE, TEACHER_TASK, WEBHOOK_QUEUE,
                              WEBHOOK_TASK, task_id)
from tasks.app import app

_ROUTE = {"student": (STUDENT_TASK, STUDENT_QUEUE), "teacher": (TEACHER_TASK, TEACHER_QUEUE),
          "webhook": (WEBHOOK_TASK, WEBHOOK_QUEUE)}


def send_stage(job_id: str, stage: str) -> None:
    name, queue = _ROUTE[stage]
    app.send_task(name, args=[job_id], task_id=task_id(job_id, stage), queue=queue)


def notify(job) -> None:
    """Queue the webhook of a finished job, if it asked for one."""
    if job is not None and job.webhook_url:
        send_stage(job.id, "webhook")

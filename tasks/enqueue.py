"""Sending stage messages. Messages carry the job id only, never image bytes; the task id names job and stage."""

from __future__ import annotations

from shared.constants import STUDENT_QUEUE, STUDENT_TASK, TEACHER_QUEUE, TEACHER_TASK, task_id
from tasks.app import app

_ROUTE = {"student": (STUDENT_TASK, STUDENT_QUEUE), "teacher": (TEACHER_TASK, TEACHER_QUEUE)}


def send_stage(job_id: str, stage: str) -> None:
    name, queue = _ROUTE[stage]
    app.send_task(name, args=[job_id], task_id=task_id(job_id, stage), queue=queue)

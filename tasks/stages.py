"""Thin stage tasks: all policy is in adq.tasks.base, all work in adq.jobs.runner."""

from __future__ import annotations

from adq.jobs.stage import STUDENT, TEACHER
from adq.tasks.app import app
from adq.tasks.base import StageTask


class StudentTask(StageTask):
    stage = STUDENT


class TeacherTask(StageTask):
    stage = TEACHER


def _limits(stage) -> dict:
    hard = stage.time_limit_s()
    return {"time_limit": hard, "soft_time_limit": max(1, hard - 10)}


@app.task(base=StudentTask, name=STUDENT.task, bind=True, **_limits(STUDENT))
def student(self: StudentTask, job_id: str, own_fence: int | None = None, outage_since: float | None = None) -> str:
    return self.run_stage(job_id, own_fence, outage_since)


@app.task(base=TeacherTask, name=TEACHER.task, bind=True, **_limits(TEACHER))
def teacher(self: TeacherTask, job_id: str, own_fence: int | None = None, outage_since: float | None = None) -> str:
    return self.run_stage(job_id, own_fence, outage_since)

"""One value per queue stage. Everything that used to be found by branching on "student" or "teacher" (queue,
task name, statuses, attempts column, image key, time limit) is an attribute here, so code says
``stage.queue`` instead of ``STUDENT_QUEUE if stage == "student" else TEACHER_QUEUE``."""

from __future__ import annotations

from dataclasses import dataclass

from adq.core.config import Settings, get_settings
from adq.core.constants import STUDENT_QUEUE, STUDENT_TASK, TEACHER_QUEUE, TEACHER_TASK
from adq.core.status import JobStatus


@dataclass(frozen=True)
class Stage:
    name: str
    queue: str
    task: str
    waiting: JobStatus  # the job waits for this stage's worker in this state
    running: JobStatus  # a worker holds the stage's claim in this state
    attempts: str  # the jobs column counting this stage's crashed claims
    worker: str  # the jobs column naming the worker that holds (or held) the claim
    started_at: str  # the jobs column with the time of the latest claim
    image: str  # the image this stage writes: "student" or "final" (adq.jobs.storage.job_key)
    time_limit_setting: str

    def time_limit_s(self, settings: Settings | None = None) -> int:
        return getattr(settings or get_settings(), self.time_limit_setting)

    def task_id(self, job_id: str) -> str:
        """Derived from job and stage, so a duplicate message is recognisable in logs, Flower and the broker."""
        return f"{job_id}:{self.name}"

    def __str__(self) -> str:
        return self.name


STUDENT = Stage(
    "student",
    STUDENT_QUEUE,
    STUDENT_TASK,
    JobStatus.QUEUED,
    JobStatus.STUDENT_RUNNING,
    "student_attempts",
    "student_worker",
    "student_started_at",
    "student",
    "student_time_limit_s",
)
TEACHER = Stage(
    "teacher",
    TEACHER_QUEUE,
    TEACHER_TASK,
    JobStatus.TEACHER_QUEUED,
    JobStatus.TEACHER_RUNNING,
    "teacher_attempts",
    "teacher_worker",
    "teacher_started_at",
    "final",
    "teacher_time_limit_s",
)
STAGES: tuple[Stage, ...] = (STUDENT, TEACHER)

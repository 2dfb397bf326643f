"""Job states and the only place that says which transitions are allowed."""

from __future__ import annotations

from enum import StrEnum

# StrEnum: members compare, serialise and store as their values, and f-strings show "queued", not
# "JobStatus.QUEUED".


class JobStatus(StrEnum):
    """A job's state."""

    QUEUED = "queued"  # row committed, student message sent (or about to be re-sent by the sweeper)
    STUDENT_RUNNING = "student_running"  # a student worker holds the claim: generate, score, decide
    TEACHER_QUEUED = "teacher_queued"  # scored below tau; waiting for a teacher worker
    TEACHER_RUNNING = "teacher_running"  # a teacher worker holds the claim: refine or regenerate
    SUCCEEDED = "succeeded"  # final image stored; terminal
    FAILED = "failed"  # gave up (bad weights, too many crashes, an outage past its budget); terminal
    CANCELLED = "cancelled"  # cancelled before it finished; workers skip it; terminal


class Strategy(StrEnum):
    """How the teacher improves an image the estimator scored below tau."""

    REFINE = "refine"  # roll the student image back by sigma and denoise it (img2img)
    REGENERATE = "regenerate"  # generate from scratch, ignoring the student image


class Route(StrEnum):
    """Where the student stage sends a job: the decision "score < tau", made once and carried as this value."""

    FINISH = "finish"  # the student's image is final
    TEACHER = "teacher"  # the teacher improves it


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

# Running states may move to themselves: that is a re-claim after a crash or a retry.
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.STUDENT_RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.STUDENT_RUNNING: frozenset(
        {
            JobStatus.STUDENT_RUNNING,
            JobStatus.QUEUED,
            JobStatus.TEACHER_QUEUED,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.TEACHER_QUEUED: frozenset({JobStatus.TEACHER_RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.TEACHER_RUNNING: frozenset(
        {
            JobStatus.TEACHER_RUNNING,
            JobStatus.TEACHER_QUEUED,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}

# Not a worker transition: only an operator's `adq retry` takes a failed job back to the stage that failed.
OPERATOR_RETRY: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.FAILED: frozenset({JobStatus.QUEUED, JobStatus.TEACHER_QUEUED})
}


def sources_for(target: JobStatus) -> frozenset[JobStatus]:
    """Every state from which ``target`` may be entered."""
    return frozenset(src for src, targets in ALLOWED.items() if target in targets)

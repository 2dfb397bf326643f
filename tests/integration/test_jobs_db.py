"""Job state transitions through the repository, on SQLite and on PostgreSQL."""

import pytest

from shared.db import jobs
from shared.errors import AttemptsExhausted
from shared.status import JobStatus
from tests.factories import job


def claim(job_id, stage="student", reclaim=False, worker="w1"):
    return jobs.claim(job_id, stage, may_reclaim=reclaim, worker=worker, lease_s=60)


def finish_student(c, teacher_used):
    return jobs.student_done(c, score=0.1, teacher_used=teacher_used, student_key=f"jobs/{c.job_id}/student.png",
                             steps=2, generate_s=0.1, score_s=0.01)


def test_student_only_path(db_env):
    row = job()
    c = claim(row.id)
    assert c.attempt == 1 and jobs.get(row.id).status == JobStatus.STUDENT_RUNNING
    assert finish_student(c, teacher_used=False)
    done = jobs.get(row.id)
    assert (done.status, done.final_image_key, done.total_steps, done.teacher_steps_run) == (
        "succeeded", f"jobs/{row.id}/student.png", 2, 0)
    assert done.student_worker == "w1" and done.finished_at is not None and done.lease_until is None


def test_teacher_path(db_env):
    row = job()
    assert finish_student(claim(row.id), teacher_used=True)
    assert jobs.get(row.id).status == "teacher_queued"
    c = claim(row.id, "teacher", worker="gpu-1")
    assert jobs.teacher_done(c, final_key="k", steps=4, teacher_s=1.0, total_steps=6)
    done = jobs.get(row.id)
    assert (done.status, done.teacher_attempts, done.total_steps, done.teacher_worker) == ("succeeded", 1, 6, "gpu-1")


def test_duplicate_message_does_nothing(db_env):
    row = job()
    assert claim(row.id) is not None
    assert claim(row.id) is None  # a second copy while the first holds a live lease
    assert jobs.get(row.id).student_attempts == 1


def test_redelivery_takes_over_and_fences_the_old_attempt(db_env):
    row = job()
    old = claim(row.id)
    new = claim(row.id, reclaim=True, worker="w2")
    assert (new.attempt, jobs.get(row.id).student_worker) == (2, "w2")
    assert not finish_student(old, teacher_used=False)  # the lost worker's late result is ignored
    assert finish_student(new, teacher_used=False)
    assert claim(row.id, reclaim=True) is None  # finished jobs are never re-run


def test_attempts_are_capped(db_env):
    from shared.config import settings

    row = job()
    for _ in range(settings.max_attempts):
        assert claim(row.id, reclaim=True) is not None
    with pytest.raises(AttemptsExhausted):
        claim(row.id, reclaim=True)
    assert claim(row.id, reclaim=True) is None  # already failed: nothing to do, nothing raised
    failed = jobs.get(row.id)
    assert failed.status == "failed" and f"after {settings.max_attempts} attempts" in failed.error


def test_release_for_retry_then_reclaim(db_env):
    row = job()
    c = claim(row.id)
    assert jobs.release(c, "StorageUnavailable: S3 down")
    back = jobs.get(row.id)
    assert (back.status, back.error) == ("queued", "StorageUnavailable: S3 down")
    assert claim(row.id).attempt == 2


def test_cancelled_job_is_skipped(db_env):
    row = job()
    assert jobs.cancel(row.id).status == "cancelled"
    assert claim(row.id) is None and claim(row.id, reclaim=True) is None
    c_row = job()
    c = claim(c_row.id)
    jobs.cancel(c_row.id)
    assert not finish_student(c, teacher_used=True)  # a worker mid-stage cannot revive it
    assert jobs.get(c_row.id).status == "cancelled"


def test_stale_jobs_are_found_for_the_sweeper(db_env):
    fresh, lost = job(), job()
    jobs.mark_enqueued(fresh.id)
    stale = jobs.stale(older_than_s=3600)
    assert (lost.id, "student") in stale and (fresh.id, "student") not in stale
    c = jobs.claim(fresh.id, "student", may_reclaim=False, worker="w", lease_s=-1)  # lease already expired
    assert (fresh.id, "student") in jobs.stale(older_than_s=3600)
    assert c is not None


def test_illegal_transition_is_refused_in_code(db_env):
    row = job()
    with pytest.raises(AssertionError, match="not allowed"):
        jobs._transition(row.id, JobStatus.SUCCEEDED, {JobStatus.QUEUED})

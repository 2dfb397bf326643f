"""Job state transitions through the repository, on SQLite and on PostgreSQL."""

import pytest

from adq.core.errors import AttemptsExhausted
from adq.core.status import JobStatus, Route
from adq.jobs.db import jobs, operator, outbox
from adq.jobs.holders import Claimant
from adq.jobs.stage import STAGES, STUDENT
from tests.factories import job


def claim(job_id, stage="student", reclaim=False, worker="w1", lease_s=60):
    """reclaim: the current holder is known to be gone (its process died), so its live claim may be taken over."""
    return jobs.claim(
        job_id, {s.name: s for s in STAGES}[stage], Claimant(worker, holder_gone=lambda _holder: reclaim), lease_s
    )


def finish_student(c, teacher_used):
    return jobs.record_student(
        c,
        Route.TEACHER if teacher_used else Route.FINISH,
        score=0.1,
        student_key=f"jobs/{c.job_id}/student.png",
        steps=2,
        generate_s=0.1,
        score_s=0.01,
    )


def test_student_only_path(db_env):
    row = job()
    c = claim(row.id)
    assert c.attempt == 1 and jobs.get(row.id).status == JobStatus.STUDENT_RUNNING
    assert finish_student(c, teacher_used=False)
    done = jobs.get(row.id)
    assert (done.status, done.final_image_key, done.total_steps, done.teacher_steps_run) == (
        "succeeded",
        f"jobs/{row.id}/student.png",
        2,
        0,
    )
    assert done.student_worker == "w1" and done.finished_at is not None and done.lease_until is None


def test_teacher_path(db_env):
    row = job()
    assert finish_student(claim(row.id), teacher_used=True)
    assert jobs.get(row.id).status == "teacher_queued"
    c = claim(row.id, "teacher", worker="gpu-1")
    assert jobs.record_teacher(c, final_key="k", steps=4, teacher_s=1.0)
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
    from adq.core.config import get_settings

    row = job()
    for _ in range(get_settings().max_attempts):
        assert claim(row.id, reclaim=True) is not None
    with pytest.raises(AttemptsExhausted):
        claim(row.id, reclaim=True)
    assert claim(row.id, reclaim=True) is None  # already failed: nothing to do, nothing raised
    failed = jobs.get(row.id)
    assert failed.status == "failed" and f"after {get_settings().max_attempts} attempts" in failed.error


def test_release_for_retry_then_reclaim(db_env):
    row = job()
    c = claim(row.id)
    assert jobs.release(c, "StorageUnavailable: S3 down")
    back = jobs.get(row.id)
    assert (back.status, back.error) == ("queued", "StorageUnavailable: S3 down")
    # Issue 12: an outage is not a crash, so the released claim is taken off the attempts budget.
    assert (back.student_attempts, back.transient_retries, back.last_transient_error) == (
        0,
        1,
        "StorageUnavailable: S3 down",
    )
    again = claim(row.id)
    assert again.attempt == 1 and again.fence == c.fence + 1


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
    outbox.mark_enqueued(fresh.id)
    stale = outbox.stale(older_than_s=3600)
    assert (lost.id, STUDENT, 3, lost.preset) in stale and fresh.id not in {job_id for job_id, *_ in stale}
    c = claim(fresh.id, worker="w", lease_s=-1)  # lease already expired
    assert (fresh.id, STUDENT, 3, fresh.preset) in outbox.stale(older_than_s=3600)
    assert c is not None


def test_illegal_transition_is_refused_in_code(db_env):
    row = job()
    with pytest.raises(AssertionError, match="not allowed"):
        jobs._transition(row.id, JobStatus.SUCCEEDED, {JobStatus.QUEUED})


def test_live_lease_is_never_taken_over_by_a_duplicate_even_a_retry(db_env):
    row = job()
    first = claim(row.id)
    # A retry or redelivery whose holder is alive (holder_gone says no) and which is not the holder's own retry.
    assert jobs.claim(row.id, STUDENT, Claimant("w2", own_fence=first.fence + 7)) is None
    now = jobs.get(row.id)
    assert (now.student_attempts, now.fence, now.student_worker) == (1, first.fence, "w1")


def test_own_fence_takeover_continues_the_same_attempt(db_env):
    row = job()
    first = claim(row.id)  # then the database went away before it could record or release
    again = jobs.claim(row.id, STUDENT, Claimant("w1", own_fence=first.fence))
    assert again is not None and again.fence == first.fence + 1
    now = jobs.get(row.id)
    assert (now.student_attempts, now.transient_retries) == (1, 1)  # an outage, not a crash
    assert not finish_student(first, teacher_used=False)  # the old fence is dead
    assert finish_student(again, teacher_used=False)


def test_outages_never_exhaust_the_crash_budget(db_env):
    from adq.core.config import get_settings

    row = job()
    for i in range(3 * get_settings().max_attempts):
        c = claim(row.id)
        assert c is not None and c.attempt == 1, i
        assert jobs.release(c, "DatabaseUnavailable: blip")
    back = jobs.get(row.id)
    assert (back.status, back.student_attempts, back.transient_retries) == (
        "queued",
        0,
        3 * get_settings().max_attempts,
    )
    assert back.transient_since is not None


def test_operator_retry_moves_the_error_to_history(db_env):
    from adq.core.errors import JobNotRetryable

    row = job()
    c = claim(row.id)
    assert finish_student(c, teacher_used=True)
    t = claim(row.id, "teacher")
    jobs.fail(row.id, "teacher: ModelError: weights missing")
    with pytest.raises(JobNotRetryable):
        operator.retry(job().id)  # a queued job is not retryable
    again, stage = operator.retry(row.id)
    assert stage.name == "teacher" and again.status == "teacher_queued"
    assert (again.teacher_attempts, again.student_attempts, again.retries, again.error) == (0, 1, 1, None)
    assert again.history[0]["error"] == "teacher: ModelError: weights missing"
    assert again.history[0]["stage"] == "teacher" and again.history[0]["attempts"] == 1
    assert not jobs.record_teacher(t, final_key="k", steps=4, teacher_s=1.0)  # the failed attempt stays dead
    assert claim(row.id, "teacher").attempt == 1


def test_workers_declaring_one_pipeline_preset_at_once_all_succeed(db_env):
    """Workers of one pipeline object start together and each declares its preset: one upsert, not a read and
    then an insert that two of them make (the second worker used to die on the primary key)."""
    import threading

    from adq.jobs.db import declared

    errors, barrier = [], threading.Barrier(4)

    def start(i):
        barrier.wait()
        try:
            declared.declare("paper-race", {"student": {"source": "tiny:student"}, "n": i})
        except Exception as exc:  # each would be a worker that died at start-up
            errors.append(exc)

    for _round in range(5):
        threads = [threading.Thread(target=start, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert declared.lookup("paper-race")["n"] in range(4)

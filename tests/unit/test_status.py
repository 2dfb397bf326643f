import pytest

from adq.core.status import ALLOWED, TERMINAL, JobStatus, sources_for


def test_terminal_states_have_no_way_out():
    for status in TERMINAL:
        assert ALLOWED[status] == frozenset()


def test_happy_paths_are_allowed():
    student_only = [JobStatus.QUEUED, JobStatus.STUDENT_RUNNING, JobStatus.SUCCEEDED]
    with_teacher = [
        JobStatus.QUEUED,
        JobStatus.STUDENT_RUNNING,
        JobStatus.TEACHER_QUEUED,
        JobStatus.TEACHER_RUNNING,
        JobStatus.SUCCEEDED,
    ]
    for path in (student_only, with_teacher):
        assert all(b in ALLOWED[a] for a, b in zip(path, path[1:]))


@pytest.mark.parametrize(
    "src, dst",
    [
        (JobStatus.QUEUED, JobStatus.SUCCEEDED),  # no result without running
        (JobStatus.QUEUED, JobStatus.TEACHER_RUNNING),
        (JobStatus.TEACHER_QUEUED, JobStatus.STUDENT_RUNNING),
        (JobStatus.SUCCEEDED, JobStatus.QUEUED),
        (JobStatus.CANCELLED, JobStatus.STUDENT_RUNNING),
        (JobStatus.FAILED, JobStatus.SUCCEEDED),
    ],
)
def test_illegal_transitions(src, dst):
    assert dst not in ALLOWED[src]


def test_every_live_state_can_fail_or_be_cancelled():
    live = set(JobStatus) - TERMINAL
    assert sources_for(JobStatus.FAILED) == live
    assert sources_for(JobStatus.CANCELLED) == live


def test_status_values_are_the_public_names():
    assert [s.value for s in JobStatus] == [
        "queued",
        "student_running",
        "teacher_queued",
        "teacher_running",
        "succeeded",
        "failed",
        "cancelled",
    ]

"""The sweeper re-sends only jobs whose message is gone from the broker (the embedded filesystem broker here;
the Redis lists and unacked hash in tests/e2e/test_recovery.py)."""

from shared.jobs.db import outbox
from tasks import client
from tasks.broker import pending_task_ids
from tasks.sweeper import sweep_once
from tests.helpers import configured


def test_a_job_whose_message_still_waits_is_not_sent_again(sqlite_env):
    from shared.core.config import get_settings

    view = client.submit("a red kite", seed=3)
    assert f"{view.id}:student" in pending_task_ids()
    assert sweep_once(older_than_s=0) == 0  # its message is still in the queue: no duplicate
    for path in (get_settings().broker_folder / "queue").glob("*.msg"):
        path.unlink()  # the broker lost it
    assert pending_task_ids() == set()
    assert sweep_once(older_than_s=0) == 1
    assert f"{view.id}:student" in pending_task_ids()


def test_a_broker_that_cannot_be_inspected_means_resend(sqlite_env):
    with configured(ADQ_BROKER_URL="memory://"):
        assert pending_task_ids() is None
    assert outbox.stale(older_than_s=3600) == []

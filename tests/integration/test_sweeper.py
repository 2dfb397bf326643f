"""The sweeper re-sends only jobs whose message is gone from the broker (the embedded filesystem broker here;
the Redis lists and unacked hash in tests/e2e/test_recovery.py)."""

from adq.jobs.db import outbox
from adq.tasks import client
from adq.tasks.broker import pending_task_ids
from adq.tasks.sweeper import sweep_once
from tests.helpers import configured


def test_a_job_whose_message_still_waits_is_not_sent_again(sqlite_env):
    from adq.core.config import get_settings

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


def _strand(r, queue: str) -> str:
    """Move the queue's one message into kombu's unacked hash, as a consumer that died with the broker leaves it."""
    import json
    import time

    from adq.core.constants import REDIS_UNACKED_INDEX_KEY, REDIS_UNACKED_KEY
    from adq.jobs.priority import list_names

    (name,) = [n for n in list_names(queue) if r.llen(n)]
    raw = r.rpop(name)
    tag = json.loads(raw)["properties"]["delivery_tag"]
    r.hset(REDIS_UNACKED_KEY, tag, json.dumps([json.loads(raw), "", queue]))  # kombu keeps [message, exchange, key]
    r.zadd(REDIS_UNACKED_INDEX_KEY, {tag: time.time()})
    return tag


def test_a_message_stranded_in_the_unacked_hash_is_sent_again(sqlite_env, redis_url):
    """A consumer that died with Redis leaves its message delivered and unacked: kombu restores it only after the
    visibility timeout (hours). The sweeper counts it lost once it was delivered longer ago than the sweep's wait
    (and than the longest retry countdown, ADQ_RETRY_BACKOFF_MAX_S, that a live holder may be waiting out)."""
    import time

    import redis

    from adq.core.constants import REDIS_UNACKED_INDEX_KEY
    from adq.jobs.priority import list_names

    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    with configured(ADQ_BROKER_URL=redis_url, ADQ_RETRY_BACKOFF_MAX_S="5"):
        view = client.submit("a red kite", seed=3)
        tag = _strand(r, "student")
        assert f"{view.id}:student" in pending_task_ids()
        assert sweep_once(older_than_s=0) == 0  # delivered just now: its consumer may be running it
        r.zadd(REDIS_UNACKED_INDEX_KEY, {tag: time.time() - 60})
        assert sweep_once(older_than_s=0) == 1  # delivered a minute ago and never acked: sent again
        assert sum(r.llen(n) for n in list_names("student")) == 1


def test_sweep_loop_honours_older_than(sqlite_env, monkeypatch):
    from adq.tasks import sweeper

    seen = []

    def once(older_than_s=None):
        seen.append(older_than_s)
        raise KeyboardInterrupt  # one round is enough

    monkeypatch.setattr(sweeper, "sweep_once", once)
    from adq.cli import main

    try:
        main(["sweep", "--loop", "--older-than", "7", "--interval", "0"])
    except KeyboardInterrupt:
        pass
    assert seen == [7.0]


def test_adq_sweep_logs_what_it_resends_as_the_workers_do(sqlite_env, capsys):
    import json

    from adq.cli import main
    from adq.core.config import get_settings

    view = client.submit("a blue kite", seed=4)
    for path in (get_settings().broker_folder / "queue").glob("*.msg"):
        path.unlink()  # the broker lost it
    assert main(["sweep", "--older-than", "0"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert any(
        line["level"] == "INFO" and line["message"] == f"re-sent job {view.id} to the student queue" for line in lines
    ), lines


def test_a_message_removed_from_redis_by_hand_is_sent_again(sqlite_env, redis_url):
    import redis

    from adq.jobs.priority import list_names

    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    with configured(ADQ_BROKER_URL=redis_url):
        view = client.submit("a green kite", seed=5)
        assert sweep_once(older_than_s=0) == 0  # still waiting in its list
        r.delete(*list_names("student"))  # lost: a Redis that died before it wrote it, or an operator's mistake
        assert sweep_once(older_than_s=0) == 1
        assert f"{view.id}:student" in pending_task_ids()

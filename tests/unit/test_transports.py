"""What each broker is told (adq.tasks.transports), without a broker: queue declarations, priorities, countdowns."""

from __future__ import annotations

from adq.core.config import Settings
from adq.jobs.priority import STEPS
from adq.tasks import transports

REDIS = Settings(broker_url="redis://127.0.0.1:6379/0")
QUORUM = Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//")
CLASSIC = Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//", amqp_queue_type="classic")
SENTINEL = Settings(broker_url="sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379/0", sentinel_master="adq")


def test_broker_kinds_by_scheme():
    assert [s.broker_kind for s in (REDIS, QUORUM, SENTINEL, Settings())] == ["redis", "amqp", "redis", "filesystem"]
    assert Settings(broker_url="sqs://").broker_kind == "other"


def test_rabbitmq_queues_are_quorum_queues_on_topic_exchanges_by_default():
    q = transports.queue("teacher", QUORUM)
    assert q.queue_arguments == {"x-queue-type": "quorum"} and q.exchange.type == "topic" and q.durable
    options = transports.celery_options(QUORUM)
    assert options["task_create_missing_queue_type"] == "quorum"  # a group's queues alike
    assert options["task_create_missing_queue_exchange_type"] == "topic"
    assert transports.transport_options(QUORUM) == {"confirm_publish": True}


def test_classic_rabbitmq_queues_carry_one_priority_per_step():
    q = transports.queue("student", CLASSIC)
    assert q.queue_arguments == {"x-max-priority": len(STEPS) - 1} and q.exchange.type == "direct"
    assert transports.celery_options(CLASSIC)["task_queue_max_priority"] == len(STEPS) - 1


def test_a_step_is_sent_as_each_broker_orders_it():
    """Redis serves step 0 first, AMQP the highest number; a RabbitMQ 4 quorum queue knows high (5+) and normal."""
    assert [transports.message_priority(step, REDIS) for step in STEPS] == list(STEPS)
    assert [transports.message_priority(step, CLASSIC) for step in STEPS] == sorted(STEPS, reverse=True)
    assert [transports.message_priority(step, QUORUM) for step in STEPS] == [5, 5, 5] + [0] * 6


def test_quorum_countdowns_are_whole_seconds_of_at_least_one():
    assert [transports.countdown(x, QUORUM) for x in (0.0, 0.2, 1.0, 1.3)] == [0.0, 1.0, 1.0, 2.0]
    assert transports.countdown(0.2, CLASSIC) == 0.2 and transports.countdown(0.2, REDIS) == 0.2


def test_sentinel_urls_name_the_master():
    options = transports.transport_options(SENTINEL)
    assert options["master_name"] == "adq" and options["priority_steps"] == list(STEPS)


def test_sentinel_urls_for_the_control_plane_and_the_rate_limits():
    from adq.core.redisconn import limits_url, sentinels
    from tests.helpers import configured

    url = "sentinel://:pw@10.0.0.1:26379;sentinel://10.0.0.2/2"
    assert sentinels(url) == ([("10.0.0.1", 26379), ("10.0.0.2", 26379)], 2, "pw")
    with configured(ADQ_SENTINEL_MASTER="adq"):
        assert limits_url(url) == "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/adq"
    assert limits_url("redis://h:6379/0") == "redis://h:6379/0"
    import pytest

    from adq.core.errors import InputError

    with pytest.raises(InputError, match="sentinel://host:port"):
        sentinels("sentinel://10.0.0.1:26379;redis://10.0.0.2")


def test_every_broker_sets_every_broker_dependent_key():
    """A process configured for RabbitMQ and then for Redis keeps none of RabbitMQ's settings (Celery's
    conf.update only overrides the keys it is given): a topic exchange left over broke the filesystem broker."""
    keys = [set(transports.celery_options(s)) for s in (REDIS, QUORUM, CLASSIC, SENTINEL, Settings())]
    assert all(k == keys[0] for k in keys)
    assert transports.celery_options(REDIS)["task_default_exchange_type"] == "direct"

"""What differs between brokers, in one module: transport options, how queues are declared, and what number a
message's priority step is sent as. Nothing above the Celery layer knows which broker it runs on; docs/brokers.md
says what each one promises.

- filesystem (the embedded default): kombu's filesystem transport, one file per message, one machine.
- redis and sentinel://: one Redis list per priority step (step 0 served first); a delivered message waits in the
  ``unacked`` hash and comes back after ``visibility_timeout``.
- amqp (RabbitMQ): durable queues, persistent messages, publisher confirms, late acks. Quorum queues by default,
  replicated with Raft; RabbitMQ 3.x quorum queues have no priorities, so ``ADQ_AMQP_QUEUE_TYPE=classic`` keeps
  the priority and fair-share steps (adq.jobs.priority) on one node's classic priority queues instead. A delivered
  message is RabbitMQ's until the ack; its ``consumer_timeout`` must exceed the longest stage (docs/brokers.md)."""

from __future__ import annotations

import math
import socket

from kombu import Exchange, Queue

from adq.core.config import Settings
from adq.core.constants import QUEUES
from adq.jobs.priority import LEVELS, STEPS

# TCP keepalive on broker connections: probes after 10 s idle, 5 s apart, 3 misses; 30 s of unacknowledged data.
KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3, socket.TCP_USER_TIMEOUT: 30_000}
MAX_PRIORITY = len(STEPS) - 1  # a classic queue's x-max-priority: one AMQP priority per step
QUORUM_HIGH = 5  # RabbitMQ 4 quorum queues serve priorities 5 and above as "high" (2:1), the rest as "normal"


def transport_options(s: Settings) -> dict:
    if s.broker_kind == "filesystem":
        folder = s.broker_folder
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "control_folder": str(folder / "control"),
            "polling_interval": 0.1,
        }
    if s.broker_kind == "amqp":
        # The publish returns once RabbitMQ has the message (a quorum queue: on a majority of its nodes).
        return {"confirm_publish": True}
    # Redis redelivers an unacked message after visibility_timeout; settings keep it above every hard time limit.
    options = {
        # Queue priorities (adq.jobs.priority): one Redis list per step, step 0 served first.
        "priority_steps": list(STEPS),
        "sep": ":",
        "queue_order_strategy": "priority",
        "visibility_timeout": s.visibility_timeout_s,
        "unacked_restore_interval": s.unacked_restore_interval_s,
        "unacked_restore_throttle": 1,
        # A silent network ends in a connection error, which Celery answers by reconnecting: a connect that gets
        # no answer, a read with none (BRPOP itself returns every second), a peer gone quiet (keepalive), and a
        # connection checked before use after 10 s idle.
        "socket_connect_timeout": s.connect_timeout_s,
        "socket_timeout": 30,
        "socket_keepalive": True,
        "socket_keepalive_options": KEEPALIVE,
        "health_check_interval": 10,
    }
    if s.effective_broker_url.startswith("sentinel://"):
        options |= {"master_name": s.sentinel_master, "sentinel_kwargs": {"socket_timeout": s.connect_timeout_s}}
    return options


def queue(name: str, s: Settings) -> Queue:
    """One queue as this broker declares it (a group's queues too: ``celery_options`` makes missing ones alike)."""
    if s.broker_kind != "amqp":
        return Queue(name)
    if s.amqp_queue_type == "quorum":
        # A topic exchange: Celery's native delayed delivery (retry countdowns on quorum queues, which cannot hold
        # a message in a worker's prefetch) routes a delayed message back by a "#.<queue>" binding.
        return Queue(name, Exchange(name, "topic"), routing_key=name, queue_arguments={"x-queue-type": "quorum"})
    return Queue(name, Exchange(name, "direct"), routing_key=name, queue_arguments={"x-max-priority": MAX_PRIORITY})


def celery_options(s: Settings) -> dict:
    """The Celery settings that depend on the broker: every key, for every broker, so that a process configured
    for RabbitMQ and then for another broker (the tests, the benchmark) keeps none of RabbitMQ's."""
    amqp, quorum = s.broker_kind == "amqp", s.broker_kind == "amqp" and s.amqp_queue_type == "quorum"
    return dict(
        task_queues=[queue(name, s) for name in QUEUES],
        task_create_missing_queue_type="quorum" if quorum else "classic",
        task_create_missing_queue_exchange_type="topic" if quorum else None,
        task_default_exchange_type="topic" if quorum else "direct",
        task_queue_max_priority=MAX_PRIORITY if amqp and not quorum else None,
        worker_detect_quorum_queues=True,  # no global QoS, which quorum queues refuse
        broker_native_delayed_delivery_queue_type="quorum" if quorum else "classic",
        task_default_delivery_mode="persistent",
        broker_heartbeat=30 if amqp else 120,  # on AMQP a dead peer is noticed in about a minute, not four
        broker_connection_timeout=s.connect_timeout_s if amqp else 4,
    )


def message_priority(step: int, s: Settings) -> int:
    """The number a priority step is sent as. Redis and the filesystem serve step 0 first; AMQP serves the highest
    number first; a RabbitMQ 4 quorum queue knows only high (5 and above) and normal, so the high band goes high."""
    if s.broker_kind != "amqp":
        return step
    if s.amqp_queue_type == "quorum":
        return QUORUM_HIGH if step < LEVELS else 0
    return MAX_PRIORITY - step


def countdown(seconds: float, s: Settings) -> float:
    """A retry's countdown as this broker can wait it: native delayed delivery (quorum queues) counts whole seconds
    and refuses a countdown under one (Celery truncates 0.4 to 0, then raises), so it is rounded up there."""
    if s.broker_kind == "amqp" and s.amqp_queue_type == "quorum" and seconds > 0:
        return float(math.ceil(seconds))
    return seconds


def declare(app) -> None:
    """Declare every queue the app knows, with its exchange and binding, at a worker's start: Celery's native
    delayed delivery binds each one's exchange, and a queue no worker has consumed yet had none."""
    from adq.core.config import get_settings

    if get_settings().broker_kind != "amqp":
        return
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
        channel = conn.channel()
        try:
            for q in app.amqp.queues.values():
                q.bind(channel).declare()
        finally:
            channel.close()

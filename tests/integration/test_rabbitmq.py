"""The RabbitMQ broker as adq declares and reads it, on the machine's RabbitMQ (a virtual host per test)."""

from __future__ import annotations

from kombu import Connection

from adq.jobs.priority import STEPS
from adq.tasks import broker
from adq.tasks.app import app
from adq.tasks.enqueue import _send
from tests.conftest import rabbitmqctl
from tests.helpers import configured


def _queues(url: str) -> dict[str, tuple[str, int]]:
    vhost = url.rsplit("/", 1)[1]
    rows = rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "name", "type").split("\n")
    return dict(tuple(row.split("\t")) for row in rows if row.strip())


def test_jobs_wait_in_quorum_queues_and_their_depth_is_read_from_the_broker(amqp_url):
    with configured(ADQ_BROKER_URL=amqp_url, ADQ_PRESET_GROUPS="tiny=flux"):
        assert broker.queue_depths() == {q: 0 for q in broker.routes.all_queues()}  # none declared yet: empty
        for n in range(3):
            _send("adq.noop", "student", f"a{n}", [], priority=4)
        _send("adq.noop", "teacher.flux", "b", [], priority=0)  # a group's queue, made on first use
        depths = broker.queue_depths()
        assert (depths["student"], depths["teacher.flux"], depths["teacher"]) == (3, 1, 0)
        assert broker.pending_task_ids() is None  # RabbitMQ lists no messages: the sweeper cannot look
    assert _queues(amqp_url) == {"student": "quorum", "teacher.flux": "quorum"}


def test_classic_queues_serve_the_priority_steps_in_order(amqp_url):
    with configured(ADQ_BROKER_URL=amqp_url, ADQ_AMQP_QUEUE_TYPE="classic"):
        steps = [STEPS[-1], 0, 4, STEPS[-1], 1]
        for n, step in enumerate(steps):
            _send("adq.noop", "student", f"{n}-step{step}", [], priority=step)
        order = []
        with Connection(amqp_url) as conn:
            queue = app.amqp.queues["student"].bind(conn.default_channel)
            while (message := queue.get(no_ack=True)) is not None:
                order.append(int(message.headers["id"].rsplit("step", 1)[1]))
    assert order == sorted(steps)  # step 0 first, as Redis serves them
    assert _queues(amqp_url) == {"student": "classic"}


def test_the_gateway_reports_rabbitmqs_depths_to_keda_and_prometheus(amqp_url, sqlite_env):
    from fastapi.testclient import TestClient

    with configured(ADQ_BROKER_URL=amqp_url, ADQ_OPS_TOKEN="ops-token-0123456789abcdef"):
        from adq.gateway.app import create_app

        for n in range(2):
            _send("adq.noop", "teacher", f"t{n}", [], priority=0)
        api = TestClient(create_app())
        auth = {"Authorization": "Bearer ops-token-0123456789abcdef"}
        assert api.get("/v1/queues", headers=auth).json()["depths"] == {"student": 0, "teacher": 2, "webhooks": 0}
        assert 'adq_queue_depth{queue="teacher"} 2.0' in api.get("/metrics", headers=auth).text

"""Webhook delivery in-process: Standard Webhooks signatures, the address a delivery connects to, redirects,
per-job event filters and the delivery record (the outbox under a kill is tests/e2e/test_api_system.py)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from adq.core.errors import InputError, WebhookError, WebhookUnavailable
from adq.core.status import JobStatus
from adq.jobs import webhooks
from adq.jobs.db import jobs
from adq.jobs.holders import Claimant
from adq.jobs.stage import STUDENT
from tests.helpers import configured

PLAIN, STANDARD = "a-plain-old-secret", "whsec_" + "c2VjcmV0LWJ5dGVzLWZvci1hZHE="


@pytest.fixture()
def receiver():
    got, answer = [], {"code": 200, "location": None}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append((self.headers, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answer["code"])
            if answer["location"]:
                self.send_header("Location", answer["location"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, got, answer
    server.shutdown()


@pytest.mark.parametrize("secret", [PLAIN, STANDARD])
def test_signatures_are_standard_webhooks_for_plain_and_whsec_secrets(secret):
    body = b'{"id": "e1", "type": "job.succeeded"}'
    headers = webhooks.sign_headers("e1", body, secret=secret)
    assert headers["webhook-signature"].startswith("v1,") and headers["webhook-id"] == "e1"
    library = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    assert library.verify(body, headers)["type"] == "job.succeeded"
    assert webhooks.verify(body, headers, secret)
    assert not webhooks.verify(body + b" ", headers, secret) and not webhooks.verify(body, headers, "other")
    stale = webhooks.sign_headers("e1", body, timestamp=1_000_000_000, secret=secret)
    assert not webhooks.verify(body, stale, secret)  # older than five minutes


def test_delivery_connects_to_the_address_it_checked_and_never_follows_redirects(receiver, monkeypatch):
    port, got, answer = receiver
    lookups = []

    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):  # a name only this test knows: a second lookup would fail the delivery
        try:
            ipaddress.ip_address(host)
            return real(host, *args, **kwargs)  # an address literal needs no DNS
        except ValueError:
            lookups.append(host)
        if host != "hooks.example":
            raise socket.gaierror("unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with configured(ADQ_WEBHOOK_SECRET=PLAIN, ADQ_WEBHOOK_ALLOW_PRIVATE="true"):
        url = f"http://hooks.example:{port}/hook"
        assert webhooks.deliver(url, b"{}", "e1") == 200
        assert lookups == ["hooks.example"]  # resolved once, and the request went to that answer
        assert got[0][0]["Host"] == f"hooks.example:{port}"
        answer.update(code=302, location="http://169.254.169.254/latest")
        with pytest.raises(WebhookError, match="302; not retried"):
            webhooks.deliver(url, b"{}", "e2")
        assert len(got) == 2  # the redirect's target was never asked
        answer.update(code=503, location=None)
        with pytest.raises(WebhookUnavailable, match="503"):
            webhooks.deliver(url, b"{}", "e3")
        answer.update(code=200)
        webhooks.deliver(url, b"{}", "e5", owner="alice")  # a tenant's job: signed with that tenant's secret
        signed = {k.lower(): v for k, v in got[-1][0].items()}
        assert webhooks.verify(got[-1][1], signed, webhooks.secret_for("alice"))
        assert not webhooks.verify(got[-1][1], signed, PLAIN)
    private_refused = pytest.raises(InputError, match="'hooks.example' is not a public address")  # at delivery
    closed = dict(ADQ_WEBHOOK_SECRET=PLAIN, ADQ_WEBHOOK_ALLOW_PRIVATE="false", ADQ_WEBHOOK_PORTS=str(port))
    with configured(**closed), private_refused as refused:
        webhooks.deliver(f"http://hooks.example:{port}/hook", b"{}", "e4")
    assert "127.0.0.1" not in str(refused.value)  # the refusal does not map the network for the caller


def _succeeded(job_id: str) -> None:
    assert jobs.claim(job_id, STUDENT, Claimant("w")) is not None
    assert jobs._transition(job_id, JobStatus.SUCCEEDED, {JobStatus.STUDENT_RUNNING}, finished_at=jobs.utcnow())


def test_the_outbox_mark_the_event_filter_and_the_delivery_record(sqlite_env, receiver):
    from adq.tasks import client
    from adq.tasks.webhooks import webhook

    port, got, _ = receiver
    url = f"http://127.0.0.1:{port}/hook"
    with configured(ADQ_WEBHOOK_SECRET=PLAIN, ADQ_WEBHOOK_ALLOW_PRIVATE="true"):
        wanted = client.submit("a heron", k=0, webhook_url=url)
        unwanted = client.submit("a crane", k=0, webhook_url=url, webhook_events=["job.failed"])
        plain = client.submit("a stork", k=0)
        for view in (wanted, unwanted, plain):
            _succeeded(view.id)
        assert [jobs.get(v.id).webhook_pending for v in (wanted, unwanted, plain)] == [True, True, False]
        assert webhook.apply(args=[unwanted.id]).get() == "filtered"
        assert webhook.apply(args=[wanted.id]).get() == "delivered"
        assert webhook.apply(args=[wanted.id]).get() == "duplicate"
    assert len(got) == 1 and got[0][0]["webhook-id"] == f"{wanted.id}:succeeded:0"
    record = client.get(wanted.id).webhook
    assert (record["attempts"], record["last_status"], record["pending"]) == (1, 200, False)
    assert record["delivered"] == f"{wanted.id}:succeeded:0"
    assert not jobs.get(unwanted.id).webhook_pending and jobs.get(unwanted.id).webhook_attempts == 0

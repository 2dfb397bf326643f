"""A probe of the gateway on PostgreSQL and Redis (issue 23's first part): a body too large or sent without a key
is refused before it is read, keys that would fail open or collide stop the gateway, and another key's job answers
exactly as a missing one does."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from adq.core.errors import InputError
from tests.helpers import configured

# alice's key as given in development, bob's in the hash form production keeps (only the digest is configured)
KEYS = "alice:key-alice-0123456789,bob:sha256:" + hashlib.sha256(b"key-bob-0123456789").hexdigest()
ALICE = {"Authorization": "Bearer key-alice-0123456789"}
BOB = {"Authorization": "Bearer key-bob-0123456789"}


@pytest.fixture()
def api(pg_env, redis_url):
    with configured(ADQ_API_KEYS=KEYS, ADQ_MAX_BODY_BYTES="4096", ADQ_RATE_LIMIT_STORAGE_URL=redis_url):
        from adq.gateway.app import create_app

        yield TestClient(create_app(), raise_server_exceptions=False)


def test_a_body_over_the_limit_is_refused_unread(api):
    big = b'{"prompt": "' + b"a" * 10_000 + b'"}'
    r = api.post("/v1/jobs", content=big, headers={**ALICE, "Content-Type": "application/json"})
    assert (
        r.status_code == 413 and r.json()["type"] == "BodyTooLarge" and "ADQ_MAX_BODY_BYTES=4096" in r.json()["error"]
    )

    def chunks():  # no Content-Length: counted as it streams, refused once past the limit
        for _ in range(10):
            yield b"x" * 1000

    r = api.post("/v1/jobs", content=chunks(), headers={**ALICE, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert api.post("/v1/jobs", json={"prompt": "a red fox"}, headers=ALICE).status_code == 202  # under it: served


def test_a_body_without_a_valid_key_is_refused_before_it_is_read(api):
    big = b"{" + b" " * 100_000  # over the limit too: the key is checked first, so the answer is 401
    for headers in ({}, {"Authorization": "Bearer not-a-key-0123456789"}):
        r = api.post("/v1/jobs", content=big, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 401 and r.json()["type"] == "Unauthorized", r.text


def test_another_keys_job_answers_as_a_missing_one(api):
    job = api.post("/v1/jobs", json={"prompt": "a red fox"}, headers=ALICE).json()
    theirs = api.get(f"/v1/jobs/{job['id']}", headers=BOB)
    missing = api.get("/v1/jobs/00000000-0000-0000-0000-000000000000", headers=BOB)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["type"] == missing.json()["type"] == "JobNotFound"
    for path in ("/image", "/events", "/cancel"):
        call = api.post if path == "/cancel" else api.get
        assert call(f"/v1/jobs/{job['id']}{path}", headers=BOB).status_code == 404


@pytest.mark.parametrize(
    "raw, fault",
    [
        (",", "holds no key"),
        ("web:change-me", "weak or a placeholder"),
        ("web:aaaaaaaaaaaaaaaaaaaa", "weak or a placeholder"),
        ("a:key-one-0123456789,a:key-two-0123456789", "two keys are named"),
        ("n" * 65 + ":key-one-0123456789", "1 to 64 characters"),
        ("web:sha256:abc123", "malformed sha256 digest"),
        ("web:sha256:" + "g" * 64, "malformed sha256 digest"),
    ],
)
def test_keys_that_would_fail_open_or_collide_stop_the_gateway(sqlite_env, raw, fault):
    from adq.gateway.app import create_app

    with configured(ADQ_API_KEYS=raw), pytest.raises(InputError, match=fault):
        create_app()


def test_a_new_key_made_by_the_cli_authenticates_through_its_hash_alone(sqlite_env):
    from adq.gateway.app import create_app

    out = subprocess.run(
        [sys.executable, "-m", "adq.cli", "api-key", "carol"], capture_output=True, text=True, check=True
    ).stdout
    key = out.split("not stored anywhere): ")[1].split()[0]
    entry = out.split("what the gateway keeps): ")[1].split()[0]
    assert entry.startswith("carol:sha256:") and key not in entry and len(key) >= 32
    with configured(ADQ_API_KEYS=entry):
        api = TestClient(create_app())
        assert api.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert api.get("/v1/jobs", headers={"Authorization": f"Bearer {entry}"}).status_code == 401


def test_a_job_view_shows_no_hosts_pids_paths_or_raw_exception_text(api):
    from adq.jobs.db import jobs

    job = api.post("/v1/jobs", json={"prompt": "a red fox"}, headers=ALICE).json()
    jobs.fail(job["id"], "teacher: RuntimeError: /srv/models/unet.safetensors is corrupt (gpu-7.internal)")
    view = api.get(f"/v1/jobs/{job['id']}", headers=ALICE).json()
    assert view["error"] == "teacher: RuntimeError"
    assert "/srv" not in str(view) and "gpu-7" not in str(view)
    assert view["student_worker"] is view["teacher_worker"] is view["last_transient_error"] is None
    assert view["webhook"].get("last_error") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://100.100.100.200/latest/meta-data",  # shared address space 100.64.0.0/10: a cloud metadata address
        "http://169.254.169.254/latest",
        "http://[fec0::1]/hook",  # IPv6 site-local
        "http://10.0.0.7/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://hooks.example.com:6379/hook",  # a port outside ADQ_WEBHOOK_PORTS
    ],
)
def test_webhook_targets_that_are_not_public_are_refused_at_submit_without_a_lookup(sqlite_env, url, monkeypatch):
    import socket

    from adq.jobs import webhooks

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("no DNS lookup at submit"))
    with configured(ADQ_WEBHOOK_SECRET="master-secret"), pytest.raises(InputError) as refused:
        webhooks.check_url(url)
    assert "resolves to" not in str(refused.value)
    with configured(ADQ_WEBHOOK_SECRET="master-secret"):
        assert webhooks.check_url("https://hooks.never-resolves.invalid/x") == "https://hooks.never-resolves.invalid/x"


def test_each_tenant_verifies_its_own_webhooks_and_no_other(sqlite_env):
    from adq.jobs import webhooks

    with configured(ADQ_WEBHOOK_SECRET="master-secret"):
        alice, bob = webhooks.secret_for("alice"), webhooks.secret_for("bob")
        assert alice.startswith("whsec_") and alice != bob and alice == webhooks.secret_for("alice")
        body = b'{"type": "job.succeeded"}'
        headers = webhooks.sign_headers("e1", body, secret=alice)
        assert webhooks.verify(body, headers, alice)
        assert not webhooks.verify(body, headers, bob) and not webhooks.verify(body, headers, "master-secret")


def test_event_streams_are_bounded(api):
    job = api.post("/v1/jobs", json={"prompt": "a red fox"}, headers=ALICE).json()
    too_far = api.get("/v1/events", headers={**ALICE, "Last-Event-ID": str(2**63)})
    assert too_far.status_code == 422 and "last-event-id" in too_far.json()["error"].lower()
    with configured(ADQ_STREAM_LIFETIME_S="1.5", ADQ_MAX_STREAMS_PER_KEY="1", ADQ_EVENTS_POLL_S="0.1"):
        with api.stream("GET", "/v1/events", headers=ALICE) as first:  # starts at the newest event: not a replay
            assert first.status_code == 200
            second = api.get("/v1/events", headers=ALICE)
            assert second.status_code == 429 and "ADQ_MAX_STREAMS_PER_KEY=1" in second.json()["error"]
            assert api.get("/v1/jobs", headers=BOB).status_code == 200  # another key is not held up
            body = first.read().decode()  # the stream ends by itself after its lifetime
        assert job["id"] not in body
        replay = api.get("/v1/events", headers={**ALICE, "Last-Event-ID": "0"}).text  # a resume replays
        assert job["id"] in replay


def test_prune_also_prunes_the_event_log(api):
    from sqlalchemy import func, select

    from adq.jobs import retention
    from adq.jobs.db.models import JobEvent
    from adq.jobs.db.session import session_scope

    api.post("/v1/jobs", json={"prompt": "a red fox"}, headers=ALICE)
    with session_scope() as s:
        before = s.scalar(select(func.count()).select_from(JobEvent))
    assert before >= 1 and retention.prune_events(ttl_s=3600) == 0  # recent events stay
    assert retention.prune_events(ttl_s=-1) == before  # everything older than "now + 1 s" goes


def test_a_key_gets_only_what_it_is_entitled_to_and_every_request_counts(api, redis_url):
    import redis
    from sqlalchemy import func, select

    from adq.jobs.db.models import Job
    from adq.jobs.db.session import session_scope

    def n_jobs():
        with session_scope() as s:
            return s.scalar(select(func.count()).select_from(Job))

    grants = '{"bob": {"presets": ["tiny"], "max_k": 50, "max_teacher_steps": 8, "rate_limit": "7/minute"}}'
    redis.Redis.from_url(redis_url).flushdb()
    with configured(ADQ_KEY_ENTITLEMENTS=grants, ADQ_RATE_LIMIT_STORAGE_URL=redis_url):
        before = n_jobs()
        for body, fault in (
            ({"k": 60}, "k=60 is over this key's largest, 50"),
            ({"preset": "null"}, "preset='null' is not one of this key's presets"),
            ({"priority": "high"}, "priority='high' is above this key's highest, 'normal'"),
            ({"teacher_steps": 20}, "teacher_steps=20 is over this key's largest, 8"),
        ):
            r = api.post("/v1/jobs", json={"prompt": "a fox", **body}, headers=BOB)
            assert r.status_code == 403 and r.json()["type"] == "NotEntitled" and fault in r.json()["error"], r.text
        r = api.post("/v1/batches", json={"items": [{"prompt": "a"}, {"prompt": "b", "k": 90}]}, headers=BOB)
        assert r.status_code == 403 and r.json()["error"].startswith("items[1]: k=90")
        assert n_jobs() == before  # nothing written for a refused job or batch
        # Alice is not named: the safe defaults (normal priority at most, 50 teacher steps)
        assert api.post("/v1/jobs", json={"prompt": "a", "priority": "high"}, headers=ALICE).status_code == 403
        # Bob's own rate limit counts every request: 4 + 2 (a batch of two) so far, then a list, then 429
        assert api.get("/v1/jobs", headers=BOB).status_code == 200
        limited = api.get("/v1/jobs", headers=BOB)
        assert limited.status_code == 429 and "7 per 1 minute" in limited.json()["error"]


def test_every_key_is_rate_limited_by_default_and_auth_off_is_not(sqlite_env, monkeypatch):
    from adq.core.process import reset
    from adq.gateway.limits import rules

    monkeypatch.delenv("ADQ_RATE_LIMIT")
    with configured(ADQ_API_KEYS=KEYS, ADQ_OPERATOR_KEYS="bob"):
        reset()
        assert [str(r) for r in rules("alice")] == ["600 per 1 minute"]
        assert rules("bob") == [] and rules(None) == []  # an operator's key, and auth off: no tenant to protect


def test_operational_endpoints_need_the_ops_token_or_an_operators_key(pg_env):
    from adq.gateway.app import create_app

    with configured(ADQ_API_KEYS=KEYS, ADQ_OPERATOR_KEYS="bob", ADQ_OPS_TOKEN="ops-token-0123456789abcdef"):
        api = TestClient(create_app(), raise_server_exceptions=False)
        ops = {"Authorization": "Bearer ops-token-0123456789abcdef"}
        for path in ("/metrics", "/v1/queues", "/v1/control"):
            assert api.get(path).status_code == 401, path
            assert api.get(path, headers=ALICE).status_code == 401, path  # a tenant's key is not enough
            assert api.get(path, headers=ops).status_code in (200, 503), path  # 503: no controller value
            assert api.get(path, headers=BOB).status_code in (200, 503), path  # an operator's key
        assert api.get("/docs").status_code == 404 and api.get("/redoc").status_code == 404
        assert api.get("/openapi.json").status_code == 401 and api.get("/openapi.json", headers=ops).status_code == 200
        assert api.get("/healthz").status_code == 200 and api.get("/readyz").status_code in (200, 503)


def test_webhook_errors_and_logs_never_show_a_urls_query_or_password(sqlite_env):
    import http.server
    import threading

    from adq.core.errors import WebhookError, WebhookUnavailable
    from adq.jobs.webhooks import deliver, shown

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    with configured(ADQ_WEBHOOK_SECRET="whsec-test-0123456789", ADQ_WEBHOOK_ALLOW_PRIVATE="true"):
        for url, fault in [
            (f"http://user:pw-SECRET@127.0.0.1:{port}/hook?token=SECRET#frag", WebhookError),
            ("http://127.0.0.1:1/hook?token=SECRET", WebhookUnavailable),  # refused: httpx's own text is dropped
        ]:
            with pytest.raises(fault) as caught:
                deliver(url, b"{}", "evt_1")
            assert "SECRET" not in str(caught.value) and "/hook?…" in str(caught.value)
    server.shutdown()
    assert (
        shown("https://h.example/p?a=1") == "https://h.example/p?…"
        and shown("https://h.example/p") == "https://h.example/p"
    )


def test_the_server_closes_a_connection_that_drips_its_headers_and_caps_connections(sqlite_env):
    import socket
    import threading
    import time

    import uvicorn

    from adq.gateway.app import create_app
    from adq.gateway.server import config

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with configured(ADQ_API_HEADER_TIMEOUT_S="1", ADQ_API_MAX_CONNECTIONS="3"):
        server = uvicorn.Server(config(create_app(), "127.0.0.1", port))
        threading.Thread(target=server.run, daemon=True).start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        try:
            slow = socket.create_connection(("127.0.0.1", port), timeout=5)
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            dripped = 0
            for _ in range(10):  # a header line every half second: never complete
                try:
                    slow.sendall(b"X-Drip: 1\r\n")
                except OSError:
                    break
                dripped += 1
                time.sleep(0.5)
            assert slow.recv(100) == b"" and dripped < 10  # the server closed it (at about 1 s) before the drip ended
            fast = socket.create_connection(("127.0.0.1", port), timeout=5)  # a prompt request is served
            fast.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert fast.recv(100).startswith(b"HTTP/1.1 200")
            held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
            held[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the fourth open connection
            assert held[-1].recv(100).startswith(b"HTTP/1.1 503")
        finally:
            server.should_exit = True

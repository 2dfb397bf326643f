"""The API for web backends, in-process (no workers): lists by cursor, batches, rate limits, retention, events,
priorities, and the typed HTTP client against the same app."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from adq.core.status import JobStatus
from adq.jobs.db import jobs
from adq.jobs.db.models import Job
from adq.jobs.db.session import session_scope
from adq.jobs.holders import Claimant
from adq.jobs.stage import STUDENT
from tests.helpers import configured, stored

KEYS = "alice:key-alice-0123456789,bob:key-bob-0123456789"
ALICE = {"Authorization": "Bearer key-alice-0123456789"}
BOB = {"Authorization": "Bearer key-bob-0123456789"}


@pytest.fixture()
def api(sqlite_env):
    grants = '{"default": {"max_priority": "high"}}'  # the priority tests send high-priority jobs
    with configured(
        ADQ_API_KEYS=KEYS, ADQ_WEBHOOK_SECRET="s3cret", ADQ_EVENTS_POLL_S="0.05", ADQ_KEY_ENTITLEMENTS=grants
    ):
        from adq.gateway.app import create_app

        yield TestClient(create_app(), raise_server_exceptions=False)


def _finish(job_id: str, status=JobStatus.SUCCEEDED, **values) -> None:
    """Stand in for the workers: a claim, then the terminal transition, through the one place that makes it."""
    if status == JobStatus.CANCELLED:
        assert jobs.cancel(job_id) is not None
        return
    if jobs.get(job_id).status == JobStatus.QUEUED:
        assert jobs.claim(job_id, STUDENT, Claimant("w")) is not None
    row = jobs._transition(job_id, status, {JobStatus.STUDENT_RUNNING}, finished_at=jobs.utcnow(), **values)
    assert row is not None


def test_list_is_the_callers_jobs_newest_first_by_cursor(api):
    mine = [api.post("/v1/jobs", json={"prompt": f"fox {i}"}, headers=ALICE).json()["id"] for i in range(5)]
    api.post("/v1/jobs", json={"prompt": "not alice's"}, headers=BOB)
    seen, cursor = [], None
    while True:
        page = api.get("/v1/jobs", params={"limit": 2} | ({"cursor": cursor} if cursor else {}), headers=ALICE).json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == mine[::-1]
    _finish(mine[0])
    done = api.get("/v1/jobs", params={"status": "succeeded"}, headers=ALICE).json()
    assert [j["id"] for j in done["jobs"]] == [mine[0]] and done["next_cursor"] is None
    since = api.get(f"/v1/jobs/{mine[2]}", headers=ALICE).json()["times"]["created_at"]
    newer = api.get("/v1/jobs", params={"created_after": since}, headers=ALICE).json()["jobs"]
    assert [j["id"] for j in newer] == mine[:2:-1]
    assert api.get("/v1/jobs", params={"created_after": "236"}, headers=ALICE).status_code == 422  # RFC 3339 only
    bad = api.get("/v1/jobs", params={"cursor": "not-a-cursor"}, headers=ALICE)
    assert bad.status_code == 422 and "cursor" in bad.json()["error"]
    bobs = api.get("/v1/jobs", params={"cursor": mine[0]}, headers=BOB)
    assert bobs.status_code == 404 and "no job of this API key" in bobs.json()["error"]


def test_a_batch_is_all_or_nothing_with_its_own_idempotency_key(api):
    body = {"items": [{"prompt": "a fox"}, {"prompt": "a hen", "k": 80}], "shared": {"k": 20}, "priority": "high"}
    r = api.post("/v1/batches", json=body, headers=ALICE | {"Idempotency-Key": "b-1"})
    assert r.status_code == 202, r.text
    batch = r.json()
    assert [j["k"] for j in batch["jobs"]] == [20, 80] and {j["priority"] for j in batch["jobs"]} == {"high"}
    again = api.post("/v1/batches", json=body, headers=ALICE | {"Idempotency-Key": "b-1"}).json()
    assert again["id"] == batch["id"] and again["job_ids"] == batch["job_ids"]
    other = api.post("/v1/batches", json=body | {"shared": {"k": 30}}, headers=ALICE | {"Idempotency-Key": "b-1"})
    assert other.status_code == 409

    with session_scope() as s:
        before = s.query(Job).count()
    bad = api.post("/v1/batches", json={"items": [{"prompt": "ok"}, {"prompt": "bad", "sigma": 7}]}, headers=ALICE)
    assert bad.status_code == 422 and "items.1.sigma=7" in bad.json()["error"]  # the schema's bounds
    grammar = {"items": [{"prompt": "ok"}, {"prompt": "a dog", "preset": "shapes"}]}
    bad = api.post("/v1/batches", json=grammar, headers=ALICE)  # the library's checks, per item
    assert bad.status_code == 422 and bad.json()["error"].startswith("items[1]: prompt 'a dog'")
    empty = api.post("/v1/batches", json={"items": [{"prompt": "ok"}, {"prompt": ""}]}, headers=ALICE)
    assert empty.status_code == 422 and "items.1.prompt" in empty.json()["error"]
    with configured(ADQ_MAX_BATCH="2"):
        big = api.post("/v1/batches", json={"items": [{"prompt": "x"}] * 3}, headers=ALICE)
    assert big.status_code == 422 and "ADQ_MAX_BATCH=2" in big.json()["error"]
    with session_scope() as s:
        assert s.query(Job).count() == before  # nothing written

    assert api.get(f"/v1/batches/{batch['id']}", headers=BOB).status_code == 404
    _finish(batch["job_ids"][0])
    cancelled = api.post(f"/v1/batches/{batch['id']}/cancel", headers=ALICE).json()
    assert cancelled["status"] == {"succeeded": 1, "cancelled": 1} and cancelled["done"]


def test_rate_limit_per_key_on_redis_answers_429_with_retry_after(api, redis_url):
    with configured(ADQ_RATE_LIMIT="3/minute", ADQ_RATE_LIMIT_STORAGE_URL=redis_url.replace("/15", "/13")):
        import redis

        redis.Redis.from_url(redis_url.replace("/15", "/13")).flushdb()
        codes = [api.post("/v1/jobs", json={"prompt": "x"}, headers=ALICE).status_code for _ in range(4)]
        assert codes == [202, 202, 202, 429]
        limited = api.post("/v1/jobs", json={"prompt": "x"}, headers=ALICE)
        assert 1 <= int(limited.headers["Retry-After"]) <= 60 and "3 per 1 minute" in limited.json()["error"]
        assert api.post("/v1/jobs", json={"prompt": "x"}, headers=BOB).status_code == 202  # per key
        batch = api.post("/v1/batches", json={"items": [{"prompt": "x"}] * 3}, headers=BOB)
        assert batch.status_code == 429  # a batch costs one hit per item


def test_retention_prunes_images_and_an_expired_image_answers_410(api):
    from adq.jobs.retention import prune
    from adq.jobs.storage import get_storage

    job = api.post("/v1/jobs", json={"prompt": "an old photo"}, headers=ALICE).json()
    get_storage().put(f"jobs/{job['id']}/final.png", b"png")
    _finish(job["id"], final_image_key=f"jobs/{job['id']}/final.png", student_image_key=None)
    assert api.get(f"/v1/jobs/{job['id']}/image", headers=ALICE).status_code == 200
    assert prune(ttl_s=3600) == 0  # finished just now
    time.sleep(0.05)
    assert prune(ttl_s=0.01) == 1 and prune(ttl_s=0.01) == 0
    assert not stored(get_storage(), f"jobs/{job['id']}/final.png")
    gone = api.get(f"/v1/jobs/{job['id']}/image", headers=ALICE)
    assert gone.status_code == 410 and "expired" in gone.json()["error"]
    assert api.get(f"/v1/jobs/{job['id']}", headers=ALICE).json()["expired"] is True


def _events(api, path: str, headers: dict) -> list[tuple[str, str | None, dict]]:
    out, kind, eid = [], None, None
    with api.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                eid = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                out.append((kind, eid if kind == "status" else None, json.loads(line.split(":", 1)[1])))
                kind, eid = None, None
    return out


def test_job_events_replay_from_last_event_id_and_end_after_the_terminal_event(api):
    job = api.post("/v1/jobs", json={"prompt": "a heron"}, headers=ALICE).json()
    claim = jobs.claim(job["id"], STUDENT, Claimant("w"))
    assert claim is not None
    _finish(job["id"])
    events = _events(api, f"/v1/jobs/{job['id']}/events", ALICE)
    statuses = [d["status"] for kind, _, d in events if kind == "status"]
    assert statuses == ["queued", "student_running", "succeeded"]
    assert events[-1][2]["job"]["id"] == job["id"] and events[-1][2]["job"]["status"] == "succeeded"
    first_id = events[0][1]
    resumed = _events(api, f"/v1/jobs/{job['id']}/events", ALICE | {"Last-Event-ID": first_id})
    assert [d["status"] for k, _, d in resumed if k == "status"] == ["student_running", "succeeded"]
    caught_up = _events(api, f"/v1/jobs/{job['id']}/events", ALICE | {"Last-Event-ID": events[-1][1]})
    assert caught_up == []  # nothing missed, and the stream ends: the job had finished
    assert api.get(f"/v1/jobs/{job['id']}/events", headers=BOB).status_code == 404


def test_a_waiting_job_streams_progress_with_its_position(api):
    from adq.jobs.events import Follower

    first = api.post("/v1/jobs", json={"prompt": "one"}, headers=ALICE).json()
    second = api.post("/v1/jobs", json={"prompt": "two"}, headers=ALICE).json()
    high = api.post("/v1/jobs", json={"prompt": "vip", "priority": "high"}, headers=BOB).json()
    follower = Follower(job_id=second["id"], owner="alice", progress_every_s=0)
    events = follower.poll()
    assert [e.type for e in events] == ["status", "progress"]
    assert events[1].data["position"] == 2 and events[1].data["stage"] == "student"  # the first, and the vip
    assert Follower(job_id=high["id"], owner="bob", progress_every_s=0).poll()[1].data["position"] == 0
    _finish(first["id"], JobStatus.CANCELLED)
    assert Follower(job_id=second["id"], owner="alice", progress_every_s=0).poll()[1].data["position"] == 1


def test_a_flooding_key_queues_its_new_jobs_in_the_lower_lane(api):
    with configured(ADQ_FAIR_SHARE_JOBS="3"):
        lanes = [api.post("/v1/jobs", json={"prompt": f"a{i}"}, headers=ALICE).json()["id"] for i in range(5)]
        bob = api.post("/v1/jobs", json={"prompt": "b", "priority": "low"}, headers=BOB).json()["id"]
    got = [jobs.get(i).queue_priority for i in lanes]
    assert got == [3, 3, 3, 4, 4] and jobs.get(bob).queue_priority == 6
    with configured(ADQ_FAIR_SHARE_JOBS="1"):
        deep = [api.post("/v1/jobs", json={"prompt": "c", "priority": "high"}, headers=ALICE).json() for _ in range(2)]
    assert [jobs.get(j["id"]).queue_priority for j in deep] == [2, 2]  # never demoted out of its band


def test_the_typed_client_against_the_app(api):
    from adq.core.errors import InputError, JobConflict, JobNotFound
    from adq.sdk import Client

    adq = Client("http://testserver", api_key="key-alice-0123456789")
    adq.http = api  # the TestClient is an httpx.Client: the same app, in-process
    adq.http.headers.update(ALICE)
    view = adq.submit("a kettle", k=10, priority="low", idempotency_key="c-1")
    assert view.priority == "low" and adq.get(view.id).id == view.id
    assert adq.submit("a kettle", k=10, priority="low", idempotency_key="c-1").id == view.id
    with pytest.raises(InputError, match="k"):
        adq.submit("a kettle", k=500)
    batch = adq.submit_batch([{"prompt": "a"}, {"prompt": "b"}], shared={"k": 0})
    assert len(batch.job_ids) == 2 and adq.batch(batch.id).size == 2
    assert {j.id for j in adq.iter_jobs(limit=1)} >= {view.id, *batch.job_ids}
    assert adq.cancel(view.id).status == "cancelled"
    with pytest.raises(JobConflict, match="already cancelled"):
        adq.cancel(view.id)
    with pytest.raises(JobNotFound):
        adq.get("nope")
    assert [e.status for e in adq.events(view.id) if e.type == "status"][-1] == "cancelled"
    assert adq.wait(view.id).status == "cancelled"


def test_newcomer_cli_batch_list_and_watch_say_when_no_worker_serves_the_queue(tmp_path):
    """As a new user: embedded defaults in a fresh folder, no worker running."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "ADQ_HOME": str(tmp_path / "home"), "ADQ_PRESET": "null"}
    for name in ("ADQ_DATABASE_URL", "ADQ_BROKER_URL", "ADQ_STORAGE_URL"):
        env.pop(name, None)

    def adq(*args, timeout=60):
        return subprocess.run(
            [sys.executable, "-m", "adq.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    (tmp_path / "prompts.txt").write_text("# two prompts\na cat on a sofa\n\na dog on a rug\n")
    batch = adq("submit", "--file", str(tmp_path / "prompts.txt"), "--k", "0", "--json")
    assert batch.returncode == 0, batch.stderr
    ids = [j["id"] for j in json.loads(batch.stdout)["jobs"]]
    listed = json.loads(adq("jobs", "--json").stdout)["jobs"]
    assert [j["id"] for j in listed] == ids[::-1] and {j["batch_id"] for j in listed} != {None}
    watched = adq("watch", ids[0], "--timeout", "4")
    assert watched.returncode == 3 and "still queued" in watched.stderr
    assert "no live worker serves the student queue; start one with `adq worker student`" in watched.stderr


def test_the_all_jobs_stream_is_the_keys_own_and_waits_at_a_gap_until_its_grace(api, monkeypatch):
    from adq.jobs import events
    from adq.jobs.events import Cursor, Follower

    mine = api.post("/v1/jobs", json={"prompt": "mine"}, headers=ALICE).json()["id"]
    api.post("/v1/jobs", json={"prompt": "theirs"}, headers=BOB)
    follower = Follower(owner="alice")
    assert [(e.job_id, e.status) for e in follower.poll()] == [(mine, "queued")]
    _finish(mine)
    assert [e.status for e in follower.poll()] == ["student_running", "succeeded"] and not follower.done

    # An id not visible yet (its transaction has not committed) holds the stream back, until the grace passes.
    cursor, now = Cursor(after=10), 1000.0
    assert cursor.advance([11, 13], now) == 11
    assert cursor.advance([11, 13], now + events.GAP_GRACE_S / 2) == 11
    assert cursor.advance([11, 13], now + events.GAP_GRACE_S + 1) == 13 and cursor.gaps == {}


def test_a_jobs_own_stream_does_not_wait_at_another_jobs_gap(api):
    from sqlalchemy import func, insert, select

    from adq.jobs.db.models import JobEvent
    from adq.jobs.events import Follower

    job = api.post("/v1/jobs", json={"prompt": "mine"}, headers=ALICE).json()["id"]
    own, everyone = Follower(job_id=job), Follower(owner=None, scoped=False)
    assert [e.status for e in own.poll() if e.type == "status"] == ["queued"]
    everyone.poll()
    with session_scope() as s:  # another job's event with ids missing below it: a transaction that rolled back
        newest = s.scalar(select(func.max(JobEvent.id)))
        at = jobs.utcnow()
        s.execute(insert(JobEvent).values(id=newest + 3, job_id="other", owner=None, status="queued", at=at))
    _finish(job)
    assert [e.status for e in own.poll()] == ["student_running", "succeeded"] and own.done
    assert everyone.poll() == []  # the all-jobs stream waits at the gap, for GAP_GRACE_S


def test_error_bodies_carry_a_stable_type_that_the_client_maps(api):
    import httpx

    from adq.core.errors import CalibrationError, IdempotencyConflict, JobFinished
    from adq.sdk import Client

    unknown = api.get("/v1/jobs/nope", headers=ALICE).json()
    assert (unknown["type"], set(unknown)) == ("JobNotFound", {"error", "type", "detail"})
    assert api.post("/v1/jobs", json={"prompt": "a"}, headers={}).json()["type"] == "Unauthorized"
    assert api.post("/v1/jobs", json={"prompt": "a", "k": 101}, headers=ALICE).json()["type"] == "InvalidRequest"
    refused = api.post("/v1/jobs", json={"prompt": "a", "preset": "lcm-sdxl"}, headers=ALICE)
    assert (refused.status_code, refused.json()["type"]) == (409, "CalibrationError")
    schema = api.get("/openapi.json", headers=ALICE).json()["components"]["schemas"]["ErrorResponse"]
    assert "type" in schema["required"] and "CalibrationError" in schema["properties"]["type"]["description"]

    adq = Client("http://testserver", api_key="key-alice-0123456789")
    adq.http = api
    adq.http.headers.update(ALICE)
    with pytest.raises(CalibrationError):  # was JobConflict, guessed from the status
        adq.submit("a kettle", preset="lcm-sdxl")
    view = adq.submit("a kettle")
    adq.cancel(view.id)
    with pytest.raises(JobFinished):
        adq.cancel(view.id)

    # The type decides, whatever the message says (the old client matched "idempotency key" in the text).
    def answer(request):
        return httpx.Response(409, json={"error": "reworded entirely", "type": "IdempotencyConflict", "detail": None})

    adq.http = httpx.Client(base_url="http://testserver", transport=httpx.MockTransport(answer))
    with pytest.raises(IdempotencyConflict, match="reworded entirely"):
        adq.submit("a kettle", idempotency_key="k-1")

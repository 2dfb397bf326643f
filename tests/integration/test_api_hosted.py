"""What backends expect from a hosted image API, in-process (no workers; a helper stands in for them): a synchronous
wait (Prefer: wait), output formats, the queue position in a job's view, and the hosted APIs' request fields."""

from __future__ import annotations

import time

import pytest

from adq.core.status import JobStatus
from adq.jobs.db.models import Job
from adq.jobs.db.session import session_scope
from tests.helpers import configured
from tests.integration.test_api import ALICE, BOB, KEYS, _finish


@pytest.fixture()
def api(sqlite_env):
    with configured(ADQ_API_KEYS=KEYS, ADQ_WEBHOOK_SECRET="s3cret", ADQ_EVENTS_POLL_S="0.05"):
        from fastapi.testclient import TestClient

        from adq.gateway.app import create_app

        yield TestClient(create_app(), raise_server_exceptions=False)


def _count_jobs() -> int:
    with session_scope() as s:
        return s.query(Job).count()


def test_prefer_wait_answers_when_the_job_ends_or_when_the_wait_runs_out(api):
    import threading

    # Nobody finishes it: the answer comes after the wait, 202 with the view so far.
    started = time.monotonic()
    slow = api.post("/v1/jobs", json={"prompt": "a fox"}, headers=ALICE | {"Prefer": "wait=1"})
    assert slow.status_code == 202 and slow.headers["Preference-Applied"] == "wait=1", slow.text
    assert slow.json()["status"] == "queued" and 1.0 <= time.monotonic() - started < 10

    # A stand-in worker finishes the next one while the request waits: 201 with the finished view.

    def finish_when_it_appears():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with session_scope() as s:
                ids = [i for (i,) in s.query(Job.id).filter(Job.status == JobStatus.QUEUED, Job.prompt == "a hare")]
            if ids:
                time.sleep(0.2)
                _finish(ids[0])
                return
            time.sleep(0.05)

    helper = threading.Thread(target=finish_when_it_appears)
    helper.start()
    quick = api.post("/v1/jobs", json={"prompt": "a hare"}, headers=ALICE | {"Prefer": "wait=30"})
    helper.join()
    assert quick.status_code == 201 and quick.headers["Preference-Applied"] == "wait=30", quick.text
    assert quick.json()["status"] == "succeeded" and quick.json()["id"] != slow.json()["id"]

    # Without the header nothing changes; `wait` alone is the longest wait.
    assert api.post("/v1/jobs", json={"prompt": "a fox"}, headers=ALICE).status_code == 202
    items = {"items": [{"prompt": "a"}, {"prompt": "b"}]}
    batch = api.post("/v1/batches", json=items, headers=ALICE | {"Prefer": "wait=1"})
    assert batch.status_code == 202 and batch.headers["Preference-Applied"] == "wait=1" and not batch.json()["done"]


@pytest.mark.parametrize("prefer", ["wait=600", "wait=0", "wait=61", "respond-async", "wait=abc"])
def test_prefer_wait_out_of_range_is_refused_before_anything_is_written(api, prefer):
    before = _count_jobs()
    answer = api.post("/v1/jobs", json={"prompt": "a fox"}, headers=ALICE | {"Prefer": prefer})
    assert answer.status_code == 422 and "prefer" in answer.text.lower(), answer.text
    batch = api.post("/v1/batches", json={"items": [{"prompt": "a"}]}, headers=ALICE | {"Prefer": prefer})
    assert batch.status_code == 422 and "prefer" in batch.text.lower()
    assert _count_jobs() == before


def test_waiting_requests_are_capped_per_key_like_streams(api):
    import threading

    with configured(ADQ_MAX_STREAMS_PER_KEY="1"):
        first: dict = {}
        holder = threading.Thread(
            target=lambda: first.update(
                r=api.post("/v1/jobs", json={"prompt": "a fox"}, headers=ALICE | {"Prefer": "wait=3"})
            )
        )
        holder.start()
        deadline = time.monotonic() + 5
        while _count_jobs() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = _count_jobs()
        refused = api.post("/v1/jobs", json={"prompt": "a hare"}, headers=ALICE | {"Prefer": "wait=3"})
        other_key = api.post("/v1/jobs", json={"prompt": "a hare"}, headers=BOB | {"Prefer": "wait=1"})
        holder.join()
    assert refused.status_code == 429 and "ADQ_MAX_STREAMS_PER_KEY" in refused.text
    assert _count_jobs() == before + 1  # the refused one wrote nothing; bob's is his own
    assert first["r"].status_code == 202 and other_key.status_code == 202


def test_a_final_image_is_served_in_its_output_format_and_bad_formats_are_refused(api):
    from adq.jobs.storage import get_storage

    job = api.post("/v1/jobs", json={"prompt": "a fox", "output_format": "webp"}, headers=ALICE).json()
    assert (job["output_format"], job["output_quality"]) == ("webp", 80)  # the preset's quality
    key = f"jobs/{job['id']}/final-f1.webp"
    get_storage().put(key, b"RIFF....WEBP", "image/webp")
    _finish(job["id"], final_image_key=key, student_image_key=f"jobs/{job['id']}/student-f1.png")
    served = api.get(f"/v1/jobs/{job['id']}/image", headers=ALICE)
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
    png = api.post("/v1/jobs", json={"prompt": "a fox"}, headers=ALICE).json()
    assert (png["output_format"], png["output_quality"]) == ("png", 80)

    before = _count_jobs()
    for field, value in (("output_quality", 0), ("output_quality", 101), ("output_format", "gif")):
        refused = api.post("/v1/jobs", json={"prompt": "a fox", field: value}, headers=ALICE)
        assert refused.status_code == 422 and field in refused.text, refused.text
    assert _count_jobs() == before


def test_a_waiting_jobs_view_shows_its_queue_position_and_a_finished_one_its_model_time(api):
    ids = [api.post("/v1/jobs", json={"prompt": f"fox {i}"}, headers=ALICE).json()["id"] for i in range(3)]
    views = [api.get(f"/v1/jobs/{i}", headers=ALICE).json() for i in ids]
    assert [v["queue_position"] for v in views] == [0, 1, 2]
    assert all(v["started_at"] is None and v["predict_s"] is None for v in views)
    _finish(ids[0], generate_s=0.25, score_s=0.5)
    done = api.get(f"/v1/jobs/{ids[0]}", headers=ALICE).json()
    assert done["queue_position"] is None and done["predict_s"] == 0.75 and done["started_at"] is not None
    assert api.get(f"/v1/jobs/{ids[2]}", headers=ALICE).json()["queue_position"] == 1  # one fewer ahead


def test_the_typed_client_waits_and_sends_the_hosted_fields(api):
    from adq.sdk import Client

    adq = Client("http://testserver", api_key="key-alice-0123456789")
    adq.http = api  # the TestClient is an httpx.Client: the same app, in-process
    adq.http.headers.update(ALICE)
    hosted = dict(output_format="jpeg", aspect_ratio="3:4", negative_prompt="rust", preset="null")
    view = adq.submit("a kettle", wait_s=1, **hosted)
    assert not view.done and view.output_format == "jpeg" and view.negative_prompt == "rust"
    assert (view.width, view.height, view.aspect_ratio) == (8, 8, "3:4")  # the null preset's 64 pixels
    batch = adq.submit_batch([{"prompt": "a"}], shared={"output_format": "webp", "preset": "null"}, wait_s=1)
    assert not batch.done and batch.jobs[0].output_format == "webp"


def test_several_outputs_make_a_group_seeded_in_order_priced_as_that_many_jobs(api):
    before = _count_jobs()
    body = {"prompt": "a fox", "preset": "null", "num_outputs": 3, "seed": 40}
    first = api.post("/v1/jobs", json=body, headers=ALICE | {"Prefer": "wait=1"})
    assert first.status_code == 202, first.text  # nobody finishes them: the wait runs out
    view = first.json()
    assert view["num_outputs"] == 3 and [o["seed"] for o in view["outputs"]] == [40, 41, 42]
    assert _count_jobs() == before + 3 and view["id"] == view["outputs"][0]["id"]
    group = api.get(f"/v1/batches/{view['batch_id']}", headers=ALICE).json()
    assert group["size"] == 3 and group["job_ids"] == [o["id"] for o in view["outputs"]]
    for out in view["outputs"][1:]:
        assert api.get(f"/v1/jobs/{out['id']}", headers=ALICE).json()["outputs"] == view["outputs"]

    # Every image finished: each one is in every job's outputs, with its link.
    for out in view["outputs"]:
        _finish(out["id"], final_image_key=f"jobs/{out['id']}/final-f1.png")
    done = api.get(f"/v1/jobs/{view['outputs'][2]['id']}", headers=ALICE).json()
    assert [o["status"] for o in done["outputs"]] == ["succeeded"] * 3
    assert all(o["image"] == f"/v1/jobs/{o['id']}/image?which=final" for o in done["outputs"])

    for bad in (0, 5, True, 2.5):
        refused = api.post("/v1/jobs", json=body | {"num_outputs": bad}, headers=ALICE)
        assert refused.status_code == 422 and "num_outputs" in refused.text, refused.text
    assert _count_jobs() == before + 3

    with configured(ADQ_RATE_LIMIT="4/minute", ADQ_RATE_LIMIT_STORAGE_URL="memory://"):
        assert api.post("/v1/jobs", json=body, headers=BOB).status_code == 202  # three of four
        limited = api.post("/v1/jobs", json=body | {"num_outputs": 2}, headers=BOB)
        assert limited.status_code == 429  # two more would be five


def test_a_flagged_jobs_images_are_withheld_from_its_view_and_routes(api):
    job = api.post("/v1/jobs", json={"prompt": "a fox", "preset": "null"}, headers=ALICE).json()
    placeholder, student = f"jobs/{job['id']}/final-f1.png", f"jobs/{job['id']}/student-f1.png"
    _finish(job["id"], final_image_key=placeholder, student_image_key=student, nsfw=True, safety_filter="red")
    view = api.get(f"/v1/jobs/{job['id']}", headers=ALICE).json()
    assert view["nsfw"] is True and view["safety_filter"] == "red" and view["student_image_key"] is None
    assert view["images"]["student"] is None and view["outputs"][0]["image"] is None
    withheld = api.get(f"/v1/jobs/{job['id']}/image", params={"which": "student"}, headers=ALICE)
    assert withheld.status_code == 409 and withheld.json()["type"] == "ImageWithheld"

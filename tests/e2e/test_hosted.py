"""What a backend moving from a hosted image API expects, on real workers (Redis, PostgreSQL, S3): one request for
four webp images at 16:9 with a negative prompt answers synchronously, a flagged image is withheld, and a wait that
runs out answers 202 while the job goes on."""

from __future__ import annotations

import io
import time

import httpx
from fastapi.testclient import TestClient
from PIL import Image

from adq.jobs.db import calibrations
from adq.method.presets import student_settings
from adq.tasks import client
from tests import factories
from tests.helpers import configured
from tests.plugins.safety import PRESETS, SLOW

SIZE = (136, 72)  # 16:9 at 0.01 megapixels, in multiples of 8


def _fetch(api: TestClient, link: str) -> httpx.Response:
    return httpx.get(link) if link.startswith("http") else api.get(link)


def test_four_webp_images_at_16_9_answer_within_the_wait_and_a_flagged_one_is_withheld(system, tmp_path):
    from adq.gateway.app import create_app

    presets = tmp_path / "presets.yaml"
    presets.write_text(PRESETS)
    # The null teacher takes 2.5 s: a wait of 1 s on a job it improves runs out.
    extra = {"ADQ_PRESETS_FILE": str(presets), "ADQ_PRESET": "null-safe", "ADQ_NULL_TEACHER_MS": "2500"}
    with configured(**extra):
        # The operator calibrated the preset at this size (`adq calibrate --width 136 --height 72`).
        settings = student_settings("null-safe", 1, 0.0, *SIZE)
        calibrations.record(settings, factories.percentiles(), n_samples=101, source="test")
        system.workers("student", "teacher", **extra)
        api = TestClient(create_app())
        body = {
            "prompt": "a red fox in snow",
            "num_outputs": 4,
            "seed": 3,  # seeds 3-6; the filter flags seed 6's image (red 222)
            "negative_prompt": "fog, blur",
            "aspect_ratio": "16:9",
            "megapixels": 0.01,
            "output_format": "webp",
            "k": 0,  # every image is the student's: each routed on its own score, none below tau
        }
        answer = api.post("/v1/jobs", json=body, headers={"Prefer": "wait=60"})
        assert answer.status_code == 201 and answer.headers["Preference-Applied"] == "wait=60", answer.text
        view = answer.json()
        assert (view["width"], view["height"], view["aspect_ratio"]) == (*SIZE, "16:9")
        outputs = view["outputs"]
        assert [o["seed"] for o in outputs] == [3, 4, 5, 6] and all(o["status"] == "succeeded" for o in outputs)
        assert [o["nsfw"] for o in outputs] == [False, False, False, True]
        for out in outputs[:3]:
            got = _fetch(api, out["image"])
            assert got.headers["content-type"] == "image/webp"
            image = Image.open(io.BytesIO(got.content))
            assert image.format == "WEBP" and image.size == SIZE
            job = api.get(f"/v1/jobs/{out['id']}").json()
            assert job["negative_prompt"] == "fog, blur" and job["output_format"] == "webp"
            student = _fetch(api, job["images"]["student"])
            assert Image.open(io.BytesIO(student.content)).format == "PNG"  # what the estimator saw
        flagged = api.get(f"/v1/jobs/{outputs[3]['id']}").json()
        assert flagged["nsfw"] and flagged["safety_filter"] == "tests.plugins.safety:red_filter"
        assert flagged["images"]["student"] is None and outputs[3]["image"] is None
        placeholder = Image.open(io.BytesIO(_fetch(api, flagged["images"]["final"]).content))
        assert placeholder.size == SIZE and placeholder.convert("RGB").getextrema() == ((0, 0),) * 3
        assert api.get(f"/v1/jobs/{outputs[3]['id']}/image", params={"which": "student"}).status_code == 409

        slow = api.post("/v1/jobs", json=body | {"num_outputs": 1, "k": 100}, headers={"Prefer": "wait=1"})
        assert slow.status_code == 202 and slow.json()["status"] != "succeeded", slow.text
        done = client.wait(slow.json()["id"], timeout=60)
        assert done.status == "succeeded" and done.teacher_used


def test_a_worker_killed_inside_the_safety_check_leaves_the_job_to_finish_once(system, tmp_path):
    """The new moment of risk: the student image is stored and the final one is being judged (then converted and
    stored) when the worker dies. The claim is taken over and the job finishes once, under the new fence."""
    from adq.jobs.db import jobs

    presets = tmp_path / "presets.yaml"
    presets.write_text(SLOW)
    mark = tmp_path / "in-the-filter"
    quick = {
        "ADQ_PRESETS_FILE": str(presets),
        "ADQ_STUDENT_TIME_LIMIT_S": "8",
        "ADQ_TEACHER_TIME_LIMIT_S": "8",
        "ADQ_VISIBILITY_TIMEOUT_S": "10",
        "ADQ_RETRY_BACKOFF_MAX_S": "2",
        "ADQ_PRESET": "null",
    }
    with configured(**quick):
        settings = student_settings("null-slow-safe", 1, 0.0, 8, 8)
        calibrations.record(settings, factories.percentiles(), n_samples=101, source="test")
        job = client.submit("a fox", preset="null-slow-safe", k=0, seed=1, output_format="webp")
        victim = system.worker(
            "student", name="student-judging", ADQ_TEST_SAFETY_MARK=str(mark), ADQ_TEST_SAFETY_S="60", **quick
        )
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert time.monotonic() < deadline, "the worker never reached the safety check"
            time.sleep(0.05)
        assert jobs.get(job.id).status == "student_running" and jobs.get(job.id).final_image_key is None
        victim.kill()
        system.worker("student", name="student-after", **quick)
        done = client.wait(job.id, timeout=90)
    row = jobs.get(job.id)
    assert done.status == "succeeded" and row.student_attempts == 2, row.error
    assert row.student_worker.startswith("student-after@") and row.nsfw is False
    fence = row.student_image_key.rsplit("-f", 1)[1].split(".")[0]
    assert row.final_image_key.endswith(f"final-f{fence}.webp")  # the finishing attempt's own images, as one pair

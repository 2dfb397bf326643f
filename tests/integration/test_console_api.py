"""What the console reads (in-process gateway, embedded database and storage): operator keys read every tenant's
jobs and events, tenants only their own; images by ``which``; thumbnails small and cached; the two console views."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.helpers import configured

KEYS = "ops:key-ops-0123456789,alice:key-alice-0123456789,bob:key-bob-0123456789"
OPS, ALICE, BOB = (
    {"Authorization": f"Bearer key-{n}"} for n in ("ops-0123456789", "alice-0123456789", "bob-0123456789")
)


@pytest.fixture()
def api(sqlite_env):
    with configured(ADQ_API_KEYS=KEYS, ADQ_OPERATOR_KEYS="ops"):
        from adq.gateway.app import create_app

        yield TestClient(create_app(), raise_server_exceptions=False)


def _finished_with_images(job_id: str) -> None:
    """Give a job a student and a final image, as the stages would have (200 px, different colours)."""
    from sqlalchemy import update

    from adq.jobs.db.models import Job
    from adq.jobs.db.session import session_scope
    from adq.jobs.storage import encode_png, get_storage

    store = get_storage()
    for which, colour in (("student", (200, 20, 20)), ("final", (20, 20, 200))):
        store.put(f"jobs/{job_id}/{which}.png", encode_png(Image.new("RGB", (200, 200), colour)))
    with session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(student_image_key=f"jobs/{job_id}/student.png", final_image_key=f"jobs/{job_id}/final.png")
        )


def test_an_operator_reads_every_tenants_jobs_and_a_tenant_only_its_own(api):
    a = api.post("/v1/jobs", json={"prompt": "alice's"}, headers=ALICE).json()["id"]
    b = api.post("/v1/jobs", json={"prompt": "bob's"}, headers=BOB).json()["id"]
    seen = {j["id"] for j in api.get("/v1/jobs", headers=OPS).json()["jobs"]}
    assert {a, b} <= seen
    assert {j["id"] for j in api.get("/v1/jobs", headers=ALICE).json()["jobs"]} == {a}
    assert api.get(f"/v1/jobs/{b}", headers=OPS).status_code == 200
    assert api.get(f"/v1/jobs/{b}", headers=ALICE).status_code == 404
    # An operator's own submissions are still its own.
    mine = api.post("/v1/jobs", json={"prompt": "ops'"}, headers=OPS).json()
    assert mine["owner"] == "ops"


def test_images_by_which_and_small_cached_thumbnails(api):
    job = api.post("/v1/jobs", json={"prompt": "a red fox"}, headers=ALICE).json()["id"]
    assert api.get(f"/v1/jobs/{job}/thumbnail", headers=ALICE).status_code == 409  # no image yet
    _finished_with_images(job)
    student = Image.open(io.BytesIO(api.get(f"/v1/jobs/{job}/image?which=student", headers=ALICE).content))
    final = Image.open(io.BytesIO(api.get(f"/v1/jobs/{job}/image", headers=ALICE).content))
    assert student.getpixel((0, 0)) == (200, 20, 20) and final.getpixel((0, 0)) == (20, 20, 200)
    thumb = api.get(f"/v1/jobs/{job}/thumbnail?which=student&side=64", headers=ALICE)
    assert thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (64, 64)
    from adq.gateway.routes.jobs import _thumbnail

    hits = _thumbnail.cache_info().hits
    api.get(f"/v1/jobs/{job}/thumbnail?which=student&side=64", headers=ALICE)
    assert _thumbnail.cache_info().hits == hits + 1  # made once per image and side
    assert api.get(f"/v1/jobs/{job}/thumbnail?side=4", headers=ALICE).status_code == 422
    assert api.get(f"/v1/jobs/{job}/thumbnail?side=65", headers=ALICE).status_code == 422  # a few sizes, not any
    assert api.get(f"/v1/jobs/{job}/thumbnail", headers=BOB).status_code == 404
    assert api.get(f"/v1/jobs/{job}/image?which=other", headers=ALICE).status_code == 422


def test_the_console_page_and_its_views(api):
    page = api.get("/console")
    assert page.status_code == 200 and "<title>adq console</title>" in page.text
    assert api.get("/console/console.js").status_code == 200
    assert api.get("/console/../pyproject.toml", follow_redirects=False).status_code in (307, 404)
    assert api.get("/v1/console/now").status_code == 401
    now = api.get("/v1/console/now", headers=ALICE).json()
    assert set(now) >= {"queues", "control", "keys", "teacher_share"} and now["control"] is None
    assert now["teacher_share"]["jobs"] == 0
    assert api.get("/v1/console/calibrations").status_code == 401
    cals = api.get("/v1/console/calibrations", headers=ALICE).json()["calibrations"]
    assert isinstance(cals, list)


def test_a_tenant_sees_its_own_scores_and_no_operational_state(api):
    """The console's views keep what /v1/queues and /v1/control keep behind the ops token (issue 32)."""
    from adq.control.live import LiveScores

    live = LiveScores("test")
    for i in range(30):
        live.record("tiny:abc", -1.0 - i / 100, owner="alice")
        live.record("tiny:abc", 5.0 + i / 100, owner="bob")
        live.record("tiny:bob-only", 1.0, owner="bob")
    live.flush()
    mine = api.get("/v1/console/now", headers=ALICE).json()
    assert mine["queues"] is None and mine["control"] is None
    assert [(k["key"], k["n"]) for k in mine["keys"]] == [("tiny:abc", 30)]
    assert mine["keys"][0]["live_tau"] < 0  # alice's own scores only: bob's are all above 5
    ops = api.get("/v1/console/now", headers=OPS).json()
    assert isinstance(ops["queues"], dict) and {k["key"] for k in ops["keys"]} == {"tiny:abc", "tiny:bob-only"}
    cals = api.get("/v1/console/calibrations", headers=ALICE)
    assert cals.status_code == 200


def test_the_console_views_count_against_the_rate_limit(api):
    with configured(ADQ_RATE_LIMIT="3/minute", ADQ_RATE_LIMIT_STORAGE_URL="memory://"):
        codes = [api.get("/v1/console/now", headers=BOB).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_an_operator_is_limited_too_at_its_higher_limit(api):
    with configured(
        ADQ_RATE_LIMIT="1/minute", ADQ_OPERATOR_RATE_LIMIT="3/minute", ADQ_RATE_LIMIT_STORAGE_URL="memory://"
    ):
        codes = [api.get("/v1/console/now", headers=OPS).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]

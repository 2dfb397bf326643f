"""Input images (issue 22): uploads, data: URIs and https URLs into a job's init_image and control_image, every
refusal with the limit and the field it names and nothing written, and calibration per mode."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import threading

import pytest
from fastapi.testclient import TestClient

from tests.helpers import configured

KEYS = "alice:key-alice-0123456789,bob:key-bob-0123456789"
ALICE = {"Authorization": "Bearer key-alice-0123456789"}
BOB = {"Authorization": "Bearer key-bob-0123456789"}


def png(size=(40, 40), colour=(20, 40, 200), fmt="PNG") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def calibrate_mode(preset="tiny", **fields):
    """A recorded calibration for a mode (the factories' percentiles), as `adq calibrate --image` would make."""
    from adq.jobs.db import calibrations
    from adq.method.params import resolve
    from tests.factories import percentiles

    p = resolve("x", preset=preset, **fields)
    return calibrations.record(p.student_settings(), percentiles(), n_samples=101, source="test")


@pytest.fixture()
def api(sqlite_env):
    with configured(ADQ_API_KEYS=KEYS, ADQ_MAX_INPUT_BYTES="200000", ADQ_MAX_INPUT_PIXELS="1000000"):
        from adq.gateway.app import create_app

        calibrate_mode(init_image="x")
        calibrate_mode(control_image="x")
        yield TestClient(create_app(), raise_server_exceptions=False)


def written() -> tuple[int, list[str]]:
    """Jobs in the database, and objects under inputs/ in storage."""
    from adq.core.config import get_settings
    from adq.jobs.db.models import Job
    from adq.jobs.db.session import session_scope

    with session_scope() as s:
        n = s.query(Job).count()
    root = get_settings().home_dir / "objects" / "inputs"
    return n, sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_an_upload_is_stored_once_by_content_and_a_job_uses_it(api):
    from adq.jobs import inputs

    data = png()
    first = api.post("/v1/uploads", files={"file": ("a.png", data)}, headers=ALICE)
    again = api.post("/v1/uploads", files={"file": ("b.png", data)}, headers=ALICE)
    assert first.status_code == 201 and first.json() == again.json()
    assert first.json() == {"id": hashlib.sha256(data).hexdigest(), "bytes": len(data), "width": 40, "height": 40}
    sha = first.json()["id"]
    job = api.post("/v1/jobs", json={"prompt": "a boat", "init_image": sha}, headers=ALICE)
    assert job.status_code == 202, job.text
    view = job.json()
    assert (view["init_image"], view["strength"], view["mode"]) == (sha, 0.6, "image2image")  # the preset's
    assert inputs.load(sha, "alice").size == (40, 40)
    # Another key cannot use it, nor learn that it exists: its uploads live apart
    theirs = api.post("/v1/jobs", json={"prompt": "a boat", "init_image": sha}, headers=BOB)
    assert theirs.status_code == 422 and "no upload with id" in theirs.json()["error"]


def _truncated() -> bytes:
    return png()[:60]


def _bomb() -> bytes:  # a few hundred bytes that decode to 25 megapixels
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (5000, 5000)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "data, status, words",
    [
        (png((300, 300), fmt="BMP"), 413, "ADQ_MAX_INPUT_BYTES=200000"),  # 270 KB
        (_bomb(), 413, "ADQ_MAX_INPUT_PIXELS=1000000"),
        (b"this is not an image", 415, "not an image"),
        (png(fmt="GIF"), 415, "GIF images are not taken"),
        (_truncated(), 422, "does not decode"),
    ],
)
def test_a_bad_upload_is_refused_naming_the_limit_and_nothing_is_written(api, data, status, words):
    before = written()
    r = api.post("/v1/uploads", files={"file": ("x", data)}, headers=ALICE)
    assert r.status_code == status and words in r.json()["error"], r.text
    assert "file" in r.json()["error"]
    assert written() == before


@pytest.mark.parametrize(
    "fields, status, words",
    [
        ({"init_image": data_uri(b"\0" * 800_000)}, 413, "init_image: a data: URI over 1000000 characters"),
        ({"init_image": data_uri(png((300, 300), fmt="BMP"))}, 413, "init_image: 270054 bytes is over ADQ_MAX"),
        ({"init_image": data_uri(_bomb())}, 413, "init_image: 5000x5000"),
        ({"control_image": data_uri(b"plain text")}, 415, "control_image: not an image"),
        ({"init_image": data_uri(_truncated())}, 422, "init_image: the image does not decode"),
        ({"init_image": "data:image/png;base64,@@@"}, 422, "base64 does not decode"),
        ({"init_image": "0" * 64}, 422, "no upload with id"),
        ({"init_image": "https://127.0.0.1/x.png"}, 422, "not a public address"),
        ({"strength": 0.5}, 422, "strength is for image-to-image"),
        ({"init_image": "0" * 64, "strength": 1.5}, 422, "strength=1.5"),
        ({"control_image": "0" * 64, "preset": "tiny-sd3"}, 422, "names no ControlNet"),
    ],
)
def test_a_job_with_a_bad_image_is_refused_naming_the_field_and_nothing_is_written(api, fields, status, words):
    before = written()
    r = api.post("/v1/jobs", json={"prompt": "a boat", **fields}, headers=ALICE)
    assert r.status_code == status and words in r.json()["error"], r.text
    assert written() == before
    # in a batch, one bad item refuses the batch, and the good item's image is not stored either
    good = {"prompt": "a boat", "init_image": data_uri(png(colour=(1, 2, 3)))}
    r = api.post("/v1/batches", json={"items": [good, {"prompt": "a boat", **fields}]}, headers=ALICE)
    assert r.status_code == status and ("items[1]" in r.json()["error"] or "items.1" in r.json()["error"]), r.text
    assert written() == before


class Serving(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):
        status, headers, body = self.routes[self.path]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_image_url_is_fetched_once_at_submit_without_redirects_or_excess(api):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Serving)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    image = png(colour=(9, 9, 9))
    Serving.routes = {
        "/ok.png": (200, {}, image),
        "/moved.png": (302, {"Location": "http://169.254.169.254/latest"}, b""),
        "/huge.png": (200, {}, image + b"\0" * 300_000),
    }
    try:
        refused = api.post("/v1/jobs", json={"prompt": "a boat", "init_image": f"{base}/ok.png"}, headers=ALICE)
        assert refused.status_code == 422  # http and a loopback host: refused unless allowed (development)
        with configured(ADQ_INPUT_ALLOW_PRIVATE="true"):
            ok = api.post("/v1/jobs", json={"prompt": "a boat", "init_image": f"{base}/ok.png"}, headers=ALICE)
            assert ok.status_code == 202 and ok.json()["init_image"] == hashlib.sha256(image).hexdigest(), ok.text
            before = written()
            moved = api.post("/v1/jobs", json={"prompt": "a", "init_image": f"{base}/moved.png"}, headers=ALICE)
            assert moved.status_code == 422 and "redirects are not followed" in moved.json()["error"]
            huge = api.post("/v1/jobs", json={"prompt": "a", "init_image": f"{base}/huge.png"}, headers=ALICE)
            assert huge.status_code == 413 and "ADQ_MAX_INPUT_BYTES" in huge.json()["error"]
            assert written() == before
    finally:
        server.shutdown()


def test_each_mode_is_calibrated_on_its_own(sqlite_env):
    from adq.core.errors import CalibrationError
    from adq.jobs import records

    text, _ = records.record("a boat", preset="tiny-sd15")
    uploaded = _stored_upload()
    with pytest.raises(CalibrationError, match=r"requested 'image2image'.*--image IMAGES --strength 0.6"):
        records.record("a boat", preset="tiny-sd15", init_image=uploaded)
    cal_id = calibrate_mode("tiny-sd15", init_image="x")
    edit, _ = records.record("a boat", preset="tiny-sd15", init_image=uploaded)
    assert edit.calibration_id == cal_id != text.calibration_id
    with pytest.raises(CalibrationError):  # another strength is another distribution
        records.record("a boat", preset="tiny-sd15", init_image=uploaded, strength=0.3)


def _stored_upload() -> str:
    from adq.jobs import inputs

    return inputs.put(png(), None)[0]


def test_inputs_follow_the_retention_of_the_jobs_that_use_them(api):
    import time

    from adq.core.errors import ObjectNotFound
    from adq.jobs import inputs
    from adq.jobs.db import jobs
    from adq.jobs.retention import prune
    from adq.jobs.storage import get_storage

    shared_sha = api.post("/v1/uploads", files={"file": ("a", png())}, headers=ALICE).json()["id"]
    own_sha = api.post("/v1/uploads", files={"file": ("b", png(colour=(7, 7, 7)))}, headers=ALICE).json()["id"]
    first = api.post("/v1/jobs", json={"prompt": "a boat", "init_image": shared_sha}, headers=ALICE).json()
    only = api.post("/v1/jobs", json={"prompt": "a boat", "init_image": own_sha}, headers=ALICE).json()
    later = api.post("/v1/jobs", json={"prompt": "a boat", "init_image": shared_sha}, headers=ALICE).json()
    for job in (first, only):  # these two finish; the later one still needs the shared input
        assert jobs.cancel(job["id"]) is not None
    time.sleep(0.05)
    assert prune(ttl_s=0.01) == 2
    with pytest.raises(ObjectNotFound):
        get_storage().get(inputs.key(own_sha, "alice"))  # used by a pruned job alone: deleted with it
    assert inputs.load(shared_sha, "alice").size == (40, 40)  # still used by an unexpired job: kept
    assert jobs.get(later["id"]).expired_at is None

"""Untrusted bytes cannot take a gateway down (issue 32): a compressed answer, a server that trickles, a header that
declares a decompression bomb, a batch that names one URL a hundred times, and a webhook receiver that answers
with gigabytes. Each fails on the code before the fix."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import threading
import time
import zlib

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.helpers import configured, free_port
from tests.integration.test_inputs import ALICE, BOB, KEYS, calibrate_mode, png, written


def noise(seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


class Hostile(http.server.BaseHTTPRequestHandler):
    """Serves the routes the tests set: a body, a stacked-gzip bomb, or one byte every ``trickle_s``."""

    protocol_version = "HTTP/1.1"
    seen: list = []
    trickle_s = 0.5
    fetches = 0
    post_body = b""  # the webhook answer: compressed before a test measures, since this server runs in-process

    def do_GET(self):
        Hostile.seen.append(dict(self.headers))
        Hostile.fetches += 1
        if self.path == "/bomb.png":
            body = gzip.compress(gzip.compress(b"\0" * 64 * 1024 * 1024))  # 64 MiB of zeros in ~70 KB
            self._answer(body, {"Content-Encoding": "gzip, gzip"})
        elif self.path == "/trickle.png":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(Hostile.trickle_s)
            except OSError:
                pass
        elif self.path.startswith("/noise"):  # /noise<N>.png: 40 x 40 of noise seeded by N, about 4.8 KB
            self._answer(noise(int(self.path[6:].split(".")[0])), {})
        else:
            self._answer(png(colour=(1, 2, 3)), {})

    def do_POST(self):  # a webhook receiver that answers with far more than anyone should read
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(Hostile.post_body, {"Content-Encoding": "gzip"})

    def _answer(self, body: bytes, headers: dict):
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def hostile():
    Hostile.seen, Hostile.fetches = [], 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def api(sqlite_env):
    env = dict(ADQ_API_KEYS=KEYS, ADQ_MAX_INPUT_BYTES="200000", ADQ_MAX_INPUT_PIXELS="1000000")
    with configured(**env, ADQ_INPUT_ALLOW_PRIVATE="true", ADQ_INPUT_FETCH_TIMEOUT_S="1.5"):
        from adq.gateway.app import create_app

        calibrate_mode(init_image="x")
        yield TestClient(create_app(), raise_server_exceptions=False)


def test_a_compressed_answer_is_refused_unread(api, hostile):
    before = written()
    r = api.post("/v1/jobs", json={"prompt": "a", "init_image": f"{hostile}/bomb.png"}, headers=ALICE)
    assert r.status_code == 415 and "Content-Encoding" in r.json()["error"], r.text
    assert Hostile.seen[-1]["Accept-Encoding"] == "identity"
    assert written() == before


def test_a_fetch_that_trickles_ends_at_its_deadline(api, hostile):
    started = time.monotonic()
    r = api.post("/v1/jobs", json={"prompt": "a", "init_image": f"{hostile}/trickle.png"}, headers=ALICE)
    took = time.monotonic() - started
    assert r.status_code == 422 and "ADQ_INPUT_FETCH_TIMEOUT_S=1.5" in r.json()["error"], r.text
    assert took < 3.0, took  # the whole fetch, not each read: a byte every 0.5 s would last 100 s


def test_fetches_in_flight_are_capped_and_health_answers_while_they_hang(sqlite_env, hostile):
    import uvicorn

    from adq.gateway.app import create_app
    from adq.gateway.server import config

    port = free_port()
    env = dict(ADQ_API_KEYS=KEYS, ADQ_INPUT_ALLOW_PRIVATE="true", ADQ_INPUT_FETCH_TIMEOUT_S="6")
    with configured(**env, ADQ_INPUT_FETCHES_MAX="3", ADQ_INPUT_FETCHES_PER_KEY="2"):
        calibrate_mode(init_image="x")
        server = uvicorn.Server(config(create_app(), "127.0.0.1", port))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        base, answers = f"http://127.0.0.1:{port}", {}

        def submit(name, headers):
            job = {"prompt": "a", "init_image": f"{hostile}/trickle.png"}
            answers[name] = httpx.post(f"{base}/v1/jobs", json=job, headers=headers, timeout=30).status_code

        try:
            stuck = [threading.Thread(target=submit, args=(f"a{i}", ALICE)) for i in range(2)]
            stuck += [threading.Thread(target=submit, args=("b0", BOB))]
            for t in stuck:
                t.start()
            while Hostile.fetches < 3:
                time.sleep(0.05)
            submit("alice-third", ALICE)  # over the key's 2
            submit("bob-second", BOB)  # over the process's 3
            assert answers == {"alice-third": 429, "bob-second": 429}, answers
            t0 = time.monotonic()
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            assert time.monotonic() - t0 < 1.0
            for t in stuck:
                t.join(30)
            assert [answers[k] for k in ("a0", "a1", "b0")] == [422, 422, 422]  # each cut off at its deadline
        finally:
            server.should_exit = True


def test_a_decompression_bomb_header_answers_413(api):
    from PIL import Image

    # A PNG whose header declares 20000 x 20000 pixels: over twice Pillow's own limit, so Image.open raises.
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, format="PNG")
    r = api.post("/v1/uploads", files={"file": ("bomb.png", out.getvalue(), "image/png")}, headers=ALICE)
    assert r.status_code == 413 and "ADQ_MAX_INPUT_PIXELS" in r.json()["error"], r.text


def test_a_batch_fetches_a_shared_url_once_and_caps_its_input_bytes(api, hostile):
    url = f"{hostile}/ok.png"
    items = [{"prompt": f"a boat {i}"} for i in range(20)]
    r = api.post("/v1/batches", json={"items": items, "shared": {"init_image": url}}, headers=ALICE)
    assert r.status_code in (201, 202), r.text
    assert Hostile.fetches == 1
    sha = hashlib.sha256(png(colour=(1, 2, 3))).hexdigest()
    assert {j["init_image"] for j in r.json()["jobs"]} == {sha}
    before = written()
    with configured(ADQ_MAX_REQUEST_INPUT_BYTES="10000"):
        items = [{"prompt": "a", "init_image": f"{hostile}/noise{i}.png"} for i in range(3)]  # about 14 KB in all
        r = api.post("/v1/batches", json={"items": items}, headers=ALICE)
    assert r.status_code == 413 and "ADQ_MAX_REQUEST_INPUT_BYTES" in r.json()["error"], r.text
    assert written() == before


def test_a_webhook_receiver_cannot_make_the_sender_read_its_answer(sqlite_env, hostile):
    import resource

    from adq.jobs.webhooks import deliver

    # 256 MiB of zeros in about 256 KB, compressed a MiB at a time: the server shares this process, so a body made
    # whole would raise the peak that the sender's growth is measured against
    packer, mib = zlib.compressobj(wbits=31), b"\0" * 1024 * 1024  # wbits=31: the gzip format
    Hostile.post_body = b"".join(packer.compress(mib) for _ in range(256)) + packer.flush()
    with configured(ADQ_WEBHOOK_SECRET="a-webhook-secret-of-some-length", ADQ_WEBHOOK_ALLOW_PRIVATE="true"):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert deliver(f"{hostile}/hook", b"{}", "evt-1") == 200
        grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 64 * 1024, grown_kb  # the 256 MiB answer was never decompressed
    assert Hostile.seen == [] or all(h.get("Accept-Encoding") for h in Hostile.seen)

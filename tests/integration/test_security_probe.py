"""The second probe (issue 32's medium and low points): no existence oracle, security headers on every answer,
auth off said loudly, a weak ops token refused, a declared preset that cannot make a process import a module, and
uploads with a quota and an expiry. Each test fails on the code before the fix."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from adq.core.errors import InputError
from tests.helpers import configured
from tests.integration.test_security import ALICE, BOB, KEYS


@pytest.fixture()
def api(sqlite_env):
    with configured(ADQ_API_KEYS=KEYS):
        from adq.gateway.app import create_app

        yield TestClient(create_app(), raise_server_exceptions=False)


def test_another_keys_cursor_reads_exactly_like_a_missing_one(api):
    bobs = api.post("/v1/jobs", json={"prompt": "bob's"}, headers=BOB).json()["id"]
    other = api.get(f"/v1/jobs?cursor={bobs}", headers=ALICE)
    missing = api.get("/v1/jobs?cursor=00000000-0000-4000-8000-000000000000", headers=ALICE)
    assert other.status_code == missing.status_code == 404
    assert other.json()["error"].replace(bobs, "ID") == missing.json()["error"].replace(
        "00000000-0000-4000-8000-000000000000", "ID"
    )


def test_every_answer_carries_the_security_headers(api):
    for path, headers in (("/console", {}), ("/v1/jobs", ALICE), ("/v1/jobs", {}), ("/healthz", {})):
        r = api.get(path, headers=headers)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer" and r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
    page = api.get("/console").headers["content-security-policy"]
    assert "script-src 'self'" in page and "unsafe-inline" not in page
    big = api.post("/v1/jobs", content=b"x" * 4_000_000, headers={**ALICE, "Content-Type": "application/json"})
    assert big.status_code == 413 and big.headers["x-content-type-options"] == "nosniff"  # before any route


def test_auth_off_is_said_at_start_up_and_in_readiness(sqlite_env, caplog):
    from adq.gateway.app import create_app

    with caplog.at_level(logging.WARNING, logger="adq.gateway.app"):
        api = TestClient(create_app())
    assert "AUTH IS OFF" in caplog.text
    assert "no API keys are set" in api.get("/readyz").json()["warnings"][0]
    with configured(ADQ_API_KEYS=KEYS):
        assert "warnings" not in TestClient(create_app()).get("/readyz").json()


@pytest.mark.parametrize("token", ["change-me", "short", "aaaaaaaaaaaaaaaaaaaa"])
def test_a_weak_or_placeholder_ops_token_stops_the_gateway(sqlite_env, token):
    from adq.gateway.app import create_app

    with configured(ADQ_API_KEYS=KEYS, ADQ_OPS_TOKEN=token), pytest.raises(InputError, match="ADQ_OPS_TOKEN is weak"):
        create_app()


def test_a_declared_preset_cannot_name_a_python_estimator(sqlite_env):
    from adq.jobs.db import declared
    from adq.method.presets import PresetFileError, get_preset, to_entry

    entry = to_entry(get_preset("null"))
    declared.declare("evil", entry | {"estimator": {"kind": "python", "factory": "os:getcwd"}})
    with pytest.raises(PresetFileError, match="must be of kind 'pipeline'"):
        get_preset("evil")
    declared.declare("served", entry | {"estimator": {"kind": "pipeline"}})
    assert get_preset("served").estimator.kind == "pipeline"


def test_uploads_have_a_quota_and_unused_ones_expire(sqlite_env):
    import io
    import json
    import os
    import time

    from PIL import Image

    from adq.core.config import get_settings
    from adq.jobs import inputs, retention
    from tests.integration.test_inputs import calibrate_mode

    def image(colour) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (40, 40), colour).save(out, format="PNG")
        return out.getvalue()

    quota = json.dumps({"default": {"max_uploads": 2}})
    with configured(ADQ_API_KEYS=KEYS, ADQ_KEY_ENTITLEMENTS=quota):
        from adq.gateway.app import create_app

        api = TestClient(create_app(), raise_server_exceptions=False)
        up = [api.post("/v1/uploads", files={"file": ("a.png", image((i, 0, 0)))}, headers=ALICE) for i in range(3)]
        assert [r.status_code for r in up] == [201, 201, 403], up[-1].text
        assert "max_uploads" in up[-1].json()["error"]
        again = api.post("/v1/uploads", files={"file": ("a.png", image((0, 0, 0)))}, headers=ALICE)
        assert again.status_code == 201  # the same bytes again take nothing more
        assert api.post("/v1/uploads", files={"file": ("b.png", image((9, 9, 9)))}, headers=BOB).status_code == 201
        used, unused = up[0].json()["id"], up[1].json()["id"]
        calibrate_mode(init_image="x")
        job = api.post("/v1/jobs", json={"prompt": "a", "init_image": used}, headers=ALICE)
        assert job.status_code == 202, job.text
        old = time.time() - 8 * 86400  # every input was sent eight days ago, past ADQ_UPLOAD_TTL_S (7 days)
        for path in (get_settings().home_dir / "objects" / inputs.PREFIX).rglob("*"):
            if path.is_file():
                os.utime(path, (old, old))
        assert retention.prune_uploads() == 2  # alice's unused one and bob's; the one a job uses stays
        assert [o.key.rsplit("/", 1)[1] for o in inputs.kept("alice")] == [used]
        assert unused not in {o.key for o in inputs.kept("alice")}

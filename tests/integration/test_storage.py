"""Image objects on a real S3 HTTP endpoint (moto server) and on the filesystem."""

import urllib.request

import pytest
from PIL import Image

from adq.core.errors import InputError, ObjectNotFound, StorageUnavailable
from adq.jobs.storage import FileStorage, S3Storage, decode_png, encode_png, job_key, open_storage
from tests.helpers import configured, stored


def png(color=(200, 10, 10)) -> bytes:
    return encode_png(Image.new("RGB", (16, 16), color))


def test_s3_round_trip_and_presigned_url(s3_endpoint, s3_storage_url):
    with configured(ADQ_S3_ENDPOINT_URL=s3_endpoint):
        store = open_storage(s3_storage_url)
        key = job_key("abc", "final")
        assert key == "jobs/abc/final.png" and not stored(store, key)
        store.put(key, png())
        assert stored(store, key) and decode_png(store.get(key)).getpixel((0, 0)) == (200, 10, 10)
        url = store.link(key, expires_s=60)
        assert "X-Amz-Signature" in url
        assert decode_png(urllib.request.urlopen(url, timeout=5).read()).size == (16, 16)
        # The prefix in the URL is part of the object key.
        import boto3

        listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=store.bucket)
        assert [o["Key"] for o in listed["Contents"]] == ["run/jobs/abc/final.png"]
        (found,) = store.listing("jobs/abc")  # keys as the rest of the code names them: without the prefix
        assert found.key == key and found.size == len(png()) and found.modified > 0
        assert store.listing("jobs/ab") == []  # a listing is of a folder, not of a key's start
        with pytest.raises(ObjectNotFound):
            store.get("jobs/nope/final.png")


def test_s3_unreachable_is_transient():
    with configured(ADQ_S3_ENDPOINT_URL="http://127.0.0.1:9"), pytest.raises(StorageUnavailable):
        S3Storage("s3://bucket/x").put("k.png", b"data")


def test_file_storage_is_atomic_and_contained(tmp_path):
    store = FileStorage((tmp_path / "objects").as_uri())
    store.put("jobs/a/student.png", png())
    assert stored(store, "jobs/a/student.png")
    assert not [p for p in (tmp_path / "objects" / "jobs" / "a").iterdir() if p.name.startswith(".")]
    with pytest.raises(InputError, match="escapes the storage root"):
        store.put("../../etc/passwd", b"x")
    with pytest.raises(InputError, match="ADQ_STORAGE_URL"):
        open_storage("ftp://host/x")


def test_init_storage_creates_a_missing_bucket(s3_endpoint):
    import os
    import subprocess
    import sys
    import uuid

    url = f"s3://adq-init-{uuid.uuid4().hex[:6]}/p"
    env = dict(os.environ, ADQ_STORAGE_URL=url, ADQ_S3_ENDPOINT_URL=s3_endpoint)
    for _ in range(2):  # idempotent
        out = subprocess.run(
            [sys.executable, "-m", "adq.cli", "init-storage"], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
    with configured(ADQ_S3_ENDPOINT_URL=s3_endpoint):
        open_storage(url).check()

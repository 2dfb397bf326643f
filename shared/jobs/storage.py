"""Image objects in S3 (boto3, any S3-compatible endpoint) or on a local filesystem, behind one interface.

Keys are fixed per job and stage (see adq.core.constants), and writes are whole-object: S3 PUT is atomic, and the
file backend writes to a temporary name and renames, so a reader never sees half an image.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from adq.core import process
from adq.core.config import get_settings
from adq.core.constants import FINAL_IMAGE, JOB_KEY_PREFIX, STUDENT_IMAGE
from adq.core.errors import InputError, ObjectNotFound, StorageError, StorageUnavailable

IMAGES = {"student": STUDENT_IMAGE, "final": FINAL_IMAGE}
# The formats a final image is served in (a job's output_format), their file extensions and content types.
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def job_key(job_id: str, image: str, fence: int | None = None, fmt: str = "png") -> str:
    """The key of a job's ``student`` or ``final`` image. A stage names it by its claim's fence, so an attempt that
    was superseded (and whose fenced record will fail) writes beside the live attempt's image, never over it: the
    row names exactly the image that was scored and recorded. ``fmt`` is the final image's output format."""
    try:
        name = IMAGES[image]
    except KeyError:
        raise InputError(f"unknown image {image!r}; choose one of {', '.join(IMAGES)}") from None
    stem, ext = name.rsplit(".", 1)
    ext = EXTENSIONS.get(fmt, ext)
    name = f"{stem}-f{fence}.{ext}" if fence is not None else f"{stem}.{ext}"
    return f"{JOB_KEY_PREFIX}/{job_id}/{name}"


class Storage(Protocol):
    url: str

    def put(self, key: str, data: bytes, content_type: str = "image/png") -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def link(self, key: str, expires_s: int | None = None) -> str: ...
    def check(self) -> None: ...
    def listing(self, prefix: str) -> list[Stored]: ...


@dataclass(frozen=True)
class Stored:
    """An object under a prefix: its key, size and when it was last written (Unix time)."""

    key: str
    size: int
    modified: float


class FileStorage:
    def __init__(self, url: str):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise InputError(f"file storage URL {url!r} must be file:///absolute/path")
        self.url = url
        self.root = Path(unquote(parsed.path))

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise InputError(f"object key {key!r} escapes the storage root")
        return path

    def put(self, key: str, data: bytes, content_type: str = "image/png") -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; images are served by other processes
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"object {key!r} not found under {self.root}") from None

    def delete(self, key: str) -> None:
        """Idempotent: a key already gone is not an error."""
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r}: {exc}") from exc

    def link(self, key: str, expires_s: int | None = None) -> str:
        return self._path(key).as_uri()

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def listing(self, prefix: str) -> list[Stored]:
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        out = []
        for path in folder.rglob("*"):
            if path.is_file() and not path.name.startswith("."):  # a write in progress is a dot-file
                stat = path.stat()
                out.append(Stored(path.relative_to(self.root).as_posix(), stat.st_size, stat.st_mtime))
        return out


class S3Storage:
    def __init__(self, url: str):
        parsed = urlparse(url)
        if not parsed.netloc:
            raise InputError(f"S3 storage URL {url!r} must be s3://bucket[/prefix]")
        self.url = url
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self._client = None
        self._client_lock = threading.Lock()

    @property
    def client(self):
        # Created on first use in the process that uses it: boto3 clients are not fork-safe. Once made, a client
        # is thread-safe; making it is not, hence the lock (task threads of the overlapped design share it).
        with self._client_lock:
            return self._client or self._make_client()

    def _make_client(self):
        import boto3
        from botocore.config import Config

        s = get_settings()
        config = Config(
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=max(16, 2 * s.worker_threads),  # one per task thread, and spare
        )
        self._client = boto3.client("s3", endpoint_url=s.s3_endpoint_url, region_name=s.s3_region, config=config)
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, key: str, fn, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(f"object {key!r} not found in s3://{self.bucket}") from None
            if status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"):
                raise StorageUnavailable(f"S3 {what} {key!r} failed: {code}") from exc
            raise StorageError(f"S3 {what} {key!r} failed: {code} {exc}") from exc
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise StorageUnavailable(f"S3 {what} {key!r} failed: {exc}") from exc

    def put(self, key: str, data: bytes, content_type: str = "image/png") -> None:
        self._call("put", key, self.client.put_object, Key=self._key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self._call("get", key, self.client.get_object, Key=self._key(key))["Body"].read()

    def delete(self, key: str) -> None:
        """Idempotent: S3 answers a delete of a missing key with success."""
        self._call("delete", key, self.client.delete_object, Key=self._key(key))

    def link(self, key: str, expires_s: int | None = None) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=expires_s or get_settings().presign_expiry_s,
        )

    def check(self) -> None:
        self._call("head_bucket", "", self.client.head_bucket)

    def listing(self, prefix: str) -> list[Stored]:
        def pages(**bucket):  # _call names the bucket
            paginator = self.client.get_paginator("list_objects_v2")
            return list(paginator.paginate(**bucket, Prefix=self._key(prefix).rstrip("/") + "/"))

        strip = len(self.prefix) + 1 if self.prefix else 0
        return [
            Stored(o["Key"][strip:], int(o["Size"]), o["LastModified"].timestamp())
            for page in self._call("list", prefix, pages)
            for o in page.get("Contents", [])
        ]

    def ensure_bucket(self) -> None:
        try:
            self.check()
        except StorageError:
            self._call("create_bucket", "", self.client.create_bucket)


def open_storage(url: str) -> Storage:
    scheme = urlparse(url).scheme
    if scheme == "file":
        return FileStorage(url)
    if scheme == "s3":
        return S3Storage(url)
    raise InputError(f"ADQ_STORAGE_URL={url!r}: use s3://bucket/prefix or file:///path")


def get_storage() -> Storage:
    """The process's one storage client for the configured URL, made on first use (``open_storage`` makes one
    for any URL). A forked child makes its own: boto3 clients are not fork-safe."""
    url = get_settings().effective_storage_url
    return process.once(("storage", url), lambda: open_storage(url))


def encode_png(image, level: int | None = None) -> bytes:
    """Lossless, so a retried stage stores the same bytes' worth of pixels. zlib level 1 (ADQ_PNG_COMPRESS_LEVEL)
    encodes about twice as fast as Pillow's default 6 for 13 % more bytes (`adq bench efficiency` measures it)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=get_settings().png_compress_level if level is None else level)
    return buf.getvalue()


def encode(image, fmt: str = "png", quality: int | None = None) -> bytes:
    """A final image in its job's output format: PNG losslessly, JPEG and WebP at ``quality`` (1-100)."""
    if fmt == "png":
        return encode_png(image)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=fmt.upper(), quality=quality or 80)
    return buf.getvalue()


def decode_png(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")

"""Input images (image-to-image's ``init_image``, ControlNet's ``control_image``): checked, stored once by content,
and read back by the workers.

An image is stored under ``inputs/<owner tag>/<sha256 of its bytes>``; the sha256 is the id an upload returns. The
owner's tag keeps tenants apart: a key can use only the images it sent, and cannot learn whether another key sent
the same bytes. A job's image field takes that
id, an ``https`` URL (fetched once, at submit, under the webhook delivery's SSRF rules: a public address checked
and connected to, no redirects, a byte cap and a timeout) or a ``data:`` URI of at most 1 MB. Every refusal names
the field and the limit, and happens before anything is written:

- over ``ADQ_MAX_INPUT_BYTES`` or ``ADQ_MAX_INPUT_PIXELS`` (read from the header, before decoding): 413;
- not a PNG, JPEG or WebP image: 415;
- truncated or undecodable: 422.

A URL is fetched as untrusted bytes: ``Accept-Encoding: identity`` and any other ``Content-Encoding`` refused
(httpx would decompress, and stacked gzip turns 269 bytes into 64 MiB), the cap counted on the raw bytes, one
deadline for the whole fetch (a server that trickles a byte at a time is cut off there), and a cap on fetches in
flight per process and per key, so stuck fetches can never take every thread of a gateway."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import ipaddress
import re
import socket
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from urllib.parse import urlparse

from adq.core.config import get_settings
from adq.core.errors import InputError, InputTooLarge, ObjectNotFound, RateLimited, UnsupportedMedia

PREFIX = "inputs"
FORMATS = ("PNG", "JPEG", "WEBP")
OTHER_FORMATS = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP", b"II*\0": "TIFF", b"MM\0*": "TIFF"}
MAX_DATA_URI = 1_000_000  # characters of a data: URI ("only recommended under 1 MB", as Replicate says)
UPLOAD_ID = re.compile(r"^[0-9a-f]{64}$")
_dns = ThreadPoolExecutor(max_workers=4, thread_name_prefix="input-dns")
_in_flight: Counter = Counter()  # fetches now running, per owner ("" for the process's total)
_in_flight_lock = threading.Lock()


def key(sha: str, owner: str | None) -> str:
    from adq.jobs.priority import owner_tag

    return f"{PREFIX}/{owner_tag(owner)}/{sha}"


def check(data: bytes, field: str):
    """The decoded image (RGB), or the refusal that names ``field`` and the limit."""
    from PIL import Image, UnidentifiedImageError

    s = get_settings()
    if len(data) > s.max_input_bytes:
        raise InputTooLarge(f"{field}: {len(data)} bytes is over ADQ_MAX_INPUT_BYTES={s.max_input_bytes}")
    try:
        with warnings.catch_warnings():  # Pillow's own bomb check is ours below, with our limit and our answer
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except UnidentifiedImageError:
        other = next((name for magic, name in OTHER_FORMATS.items() if data.startswith(magic)), None)
        if other:  # named from its first bytes: no decoder of a format we do not take ever runs
            raise UnsupportedMedia(f"{field}: {other} images are not taken; send PNG, JPEG or WebP") from None
        raise UnsupportedMedia(f"{field}: not an image (PNG, JPEG or WebP)") from None
    except Image.DecompressionBombError:  # declares over twice Pillow's own pixel limit
        raise InputTooLarge(
            f"{field}: the image declares over ADQ_MAX_INPUT_PIXELS={s.max_input_pixels} pixels"
        ) from None
    width, height = image.size
    if width * height > s.max_input_pixels:  # before decoding: a small file can claim a huge canvas
        raise InputTooLarge(
            f"{field}: {width}x{height} is {width * height} pixels, over ADQ_MAX_INPUT_PIXELS={s.max_input_pixels}"
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{field}: the image does not decode ({type(exc).__name__}: truncated or corrupt)") from None
    return image.convert("RGB")


def put(data: bytes, owner: str | None, field: str = "file", allowed=None) -> tuple[str, object]:
    """Check and store an image once by content; its id (sha256) and the decoded image. ``allowed(sha, size)``
    may refuse it first (the key's upload quota)."""
    from adq.jobs.storage import get_storage

    image = check(data, field)
    sha = hashlib.sha256(data).hexdigest()
    if allowed is not None:
        allowed(sha, len(data))
    get_storage().put(key(sha, owner), data)  # the same bytes under the same key: a repeat is a harmless overwrite
    return sha, image


def kept(owner: str | None) -> list:
    """The owner's stored input images (uploads, and the inputs of its jobs), with their sizes and ages."""
    from adq.jobs.priority import owner_tag
    from adq.jobs.storage import get_storage

    return get_storage().listing(f"{PREFIX}/{owner_tag(owner)}")


def load(sha: str, owner: str | None):
    """The stored input image, decoded (a worker's read)."""
    from PIL import Image

    from adq.jobs.storage import get_storage

    return Image.open(io.BytesIO(get_storage().get(key(sha, owner)))).convert("RGB")


@contextmanager
def fetching(owner: str | None):
    """A slot among the fetches in flight, per process and per owner, or 429 at once: the gateway's threads are
    shared by every tenant, and a fetch holds one for up to ADQ_INPUT_FETCH_TIMEOUT_S."""
    s, mine = get_settings(), owner or "-"
    with _in_flight_lock:
        if _in_flight[""] >= s.input_fetches_max:
            raise RateLimited(f"{s.input_fetches_max} input image fetches are in flight here (ADQ_INPUT_FETCHES_MAX)")
        if _in_flight[mine] >= s.input_fetches_per_key:
            raise RateLimited(
                f"this key has {s.input_fetches_per_key} input image fetches in flight "
                "(ADQ_INPUT_FETCHES_PER_KEY); upload the image instead (POST /v1/uploads)"
            )
        _in_flight[""] += 1
        _in_flight[mine] += 1
    try:
        yield
    finally:
        with _in_flight_lock:
            _in_flight[""] -= 1
            _in_flight[mine] -= 1
            if not _in_flight[mine]:
                del _in_flight[mine]  # no entry per key that ever fetched


def fetch(ref: str, field: str, owner: str | None = None) -> bytes | None:
    """The bytes a job's image field names: None for an upload id (already stored), else the data URI's or the
    URL's bytes. Raises InputError (422) for anything else."""
    if not isinstance(ref, str) or not ref:
        raise InputError(f"{field} must be an upload id, an https URL or a data: URI")
    if UPLOAD_ID.match(ref):
        return None
    if ref.startswith("data:"):
        return _data_uri(ref, field)
    if ref.startswith("https://") or (ref.startswith("http://") and get_settings().input_allow_private):
        with fetching(owner):
            return _download(ref, field)
    raise InputError(f"{field} must be an upload id (POST /v1/uploads), an https URL or a data: URI")


class Pending:
    """One request's input images that passed their checks, held until its rows are written (so a refused request
    writes nothing): a URL fetched once however many items name it, the same bytes held once, and at most
    ADQ_MAX_REQUEST_INPUT_BYTES in all, so a batch of 100 items cannot hold gigabytes."""

    def __init__(self, owner: str | None):
        self.owner, self.total = owner, 0
        self.blobs: dict[str, bytes] = {}  # storage key -> bytes
        self._by_ref: dict[str, str] = {}  # a URL or data: URI already fetched -> its sha256

    def add(self, ref: str, field: str) -> str:
        """The sha256 (upload id) of the image ``ref`` names: an upload id checked, else fetched and checked."""
        if ref in self._by_ref:
            return self._by_ref[ref]
        data = fetch(ref, field, self.owner)
        if data is None:
            return check_uploaded(ref, self.owner, field)
        check(data, field)
        sha = hashlib.sha256(data).hexdigest()
        name = key(sha, self.owner)
        if name not in self.blobs:
            limit = get_settings().max_request_input_bytes
            if self.total + len(data) > limit:
                raise InputTooLarge(f"{field}: the request's input images are over ADQ_MAX_REQUEST_INPUT_BYTES={limit}")
            self.total += len(data)
            self.blobs[name] = data
        self._by_ref[ref] = sha
        return sha

    def store(self) -> None:
        from adq.jobs.storage import get_storage

        for name, data in self.blobs.items():
            get_storage().put(name, data)


def check_uploaded(sha: str, owner: str | None, field: str) -> str:
    """An upload id that this owner's upload stored."""
    from adq.jobs.storage import get_storage

    try:
        get_storage().get(key(sha, owner))
    except ObjectNotFound:
        raise InputError(f"{field}: no upload with id {sha!r} (POST /v1/uploads returns one)") from None
    return sha


def _data_uri(ref: str, field: str) -> bytes:
    if len(ref) > MAX_DATA_URI:
        raise InputTooLarge(f"{field}: a data: URI over {MAX_DATA_URI} characters; upload it (POST /v1/uploads)")
    head, sep, payload = ref[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise InputError(f"{field}: a data: URI must be base64 (data:image/png;base64,...)")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{field}: the data: URI's base64 does not decode") from None


def _download(url: str, field: str) -> bytes:
    """One GET to the checked address, no redirects, no encoding, at most ADQ_MAX_INPUT_BYTES raw, all of it
    within ADQ_INPUT_FETCH_TIMEOUT_S."""
    import httpx

    from adq.jobs.webhooks import Target, forbidden, pinned

    s = get_settings()
    deadline = time.monotonic() + s.input_fetch_timeout_s
    refused = f"{field}: the URL's host is not a public address that answers on port 443"
    parsed = urlparse(url)
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise InputError(f"{field}: the URL has an invalid port") from None
    if not parsed.hostname:
        raise InputError(f"{field}: the URL has no host")
    host = parsed.hostname
    try:  # a name server that never answers costs the timeout, not a thread of the gateway for ever
        infos = _dns.submit(socket.getaddrinfo, host, port, proto=socket.IPPROTO_TCP).result(s.input_fetch_timeout_s)
    except (socket.gaierror, UnicodeError, ValueError, FutureTimeout):
        raise InputError(refused) from None  # the same words as a private address: no oracle of internal names
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not s.input_allow_private and (port != 443 or any(forbidden(ip) for ip in addresses)):
        raise InputError(refused)
    target_url, headers, extensions = pinned(Target(url, host, str(addresses[0])))
    headers["Accept-Encoding"] = "identity"
    limit, body = s.max_input_bytes, bytearray()
    left = max(0.1, deadline - time.monotonic())
    client = httpx.Client(timeout=left, follow_redirects=False, trust_env=False)
    # httpx's timeout is per read: the watchdog closes the connection at the deadline, whatever the server sends.
    watchdog = threading.Timer(left, client.close)
    watchdog.start()
    try:
        with client, client.stream("GET", target_url, headers=headers, extensions=extensions) as resp:
            if resp.status_code != 200:
                raise InputError(f"{field}: the URL answered {resp.status_code} (redirects are not followed)")
            encoding = resp.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise UnsupportedMedia(f"{field}: the URL answered with Content-Encoding {encoding!r}; send it plain")
            for chunk in resp.iter_raw():
                body += chunk
                if len(body) > limit:
                    raise InputTooLarge(f"{field}: the URL's image is over ADQ_MAX_INPUT_BYTES={limit}")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("deadline")
    except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: the watchdog closed the client mid-read
        if time.monotonic() >= deadline:
            raise InputError(
                f"{field}: the URL took over ADQ_INPUT_FETCH_TIMEOUT_S={s.input_fetch_timeout_s}"
            ) from None
        raise InputError(f"{field}: the URL could not be fetched ({type(exc).__name__})") from None
    finally:
        watchdog.cancel()
    return bytes(body)

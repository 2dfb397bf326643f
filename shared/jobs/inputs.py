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
- truncated or undecodable: 422."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import ipaddress
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlparse

from shared.core.config import get_settings
from shared.core.errors import InputError, InputTooLarge, ObjectNotFound, UnsupportedMedia

PREFIX = "inputs"
FORMATS = ("PNG", "JPEG", "WEBP")
MAX_DATA_URI = 1_000_000  # characters of a data: URI ("only recommended under 1 MB", as Replicate says)
UPLOAD_ID = re.compile(r"^[0-9a-f]{64}$")
_dns = ThreadPoolExecutor(max_workers=4, thread_name_prefix="input-dns")


def key(sha: str, owner: str | None) -> str:
    from shared.jobs.priority import owner_tag

    return f"{PREFIX}/{owner_tag(owner)}/{sha}"


def check(data: bytes, field: str):
    """The decoded image (RGB), or the refusal that names ``field`` and the limit."""
    from PIL import Image, UnidentifiedImageError

    s = get_settings()
    if len(data) > s.max_input_bytes:
        raise InputTooLarge(f"{field}: {len(data)} bytes is over ADQ_MAX_INPUT_BYTES={s.max_input_bytes}")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError:
        raise UnsupportedMedia(f"{field}: not an image (PNG, JPEG or WebP)") from None
    if image.format not in FORMATS:
        raise UnsupportedMedia(f"{field}: {image.format} images are not taken; send PNG, JPEG or WebP")
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


def put(data: bytes, owner: str | None, field: str = "file") -> tuple[str, object]:
    """Check and store an image once by content; its id (sha256) and the decoded image."""
    from shared.jobs.storage import get_storage

    image = check(data, field)
    sha = hashlib.sha256(data).hexdigest()
    get_storage().put(key(sha, owner), data)  # the same bytes under the same key: a repeat is a harmless overwrite
    return sha, image


def load(sha: str, owner: str | None):
    """The stored input image, decoded (a worker's read)."""
    from PIL import Image

    from shared.jobs.storage import get_storage

    return Image.open(io.BytesIO(get_storage().get(key(sha, owner)))).convert("RGB")


def fetch(ref: str, field: str) -> bytes | None:
    """The bytes a job's image field names: None for an upload id (already stored), else the data URI's or the
    URL's bytes. Raises InputError (422) for anything else."""
    if not isinstance(ref, str) or not ref:
        raise InputError(f"{field} must be an upload id, an https URL or a data: URI")
    if UPLOAD_ID.match(ref):
        return None
    if ref.startswith("data:"):
        return _data_uri(ref, field)
    if ref.startswith("https://") or (ref.startswith("http://") and get_settings().input_allow_private):
        return _download(ref, field)
    raise InputError(f"{field} must be an upload id (POST /v1/uploads), an https URL or a data: URI")


def check_uploaded(sha: str, owner: str | None, field: str) -> str:
    """An upload id that this owner's upload stored."""
    from shared.jobs.storage import get_storage

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
    """One GET to the checked address, no redirects, at most ADQ_MAX_INPUT_BYTES, within the fetch timeout."""
    import httpx

    from shared.jobs.webhooks import Target, forbidden, pinned

    s = get_settings()
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
        raise InputError(f"{field}: the URL's host {host!r} does not resolve") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not s.input_allow_private and (port != 443 or any(forbidden(ip) for ip in addresses)):
        raise InputError(f"{field}: the URL's host {host!r} is not a public address on port 443")
    target_url, headers, extensions = pinned(Target(url, host, str(addresses[0])))
    limit, body = s.max_input_bytes, bytearray()
    client = httpx.Client(timeout=s.input_fetch_timeout_s, follow_redirects=False, trust_env=False)
    try:
        with client, client.stream("GET", target_url, headers=headers, extensions=extensions) as resp:
            if resp.status_code != 200:
                raise InputError(f"{field}: the URL answered {resp.status_code} (redirects are not followed)")
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise InputTooLarge(f"{field}: the URL's image is over ADQ_MAX_INPUT_BYTES={limit}")
    except httpx.HTTPError as exc:
        raise InputError(f"{field}: the URL could not be fetched ({type(exc).__name__})") from None
    return bytes(body)

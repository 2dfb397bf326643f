"""/v1/uploads: input images for image-to-image and ControlNet jobs, stored once by content per key."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, UploadFile
from pydantic import BaseModel, Field

from adq.gateway import entitlements
from adq.gateway.deps import Caller
from adq.gateway.errors import COUNTED
from adq.jobs import inputs

router = APIRouter(
    prefix="/v1/uploads", tags=["uploads"], responses=COUNTED, dependencies=[Depends(entitlements.counted)]
)


class Upload(BaseModel):
    id: str = Field(description="The image's SHA-256: give it as a job's init_image or control_image")
    bytes: int
    width: int
    height: int


@router.post("", status_code=201, response_model=Upload)
def upload(who: Caller, file: UploadFile = File(description="A PNG, JPEG or WebP image")) -> Upload:
    """Store an input image (multipart, field ``file``), at most ADQ_MAX_INPUT_BYTES and ADQ_MAX_INPUT_PIXELS:
    ``413`` over a limit, ``415`` for what is not a PNG, JPEG or WebP image, ``422`` for one that does not
    decode, ``403`` past the key's upload quota (ADQ_KEY_ENTITLEMENTS: max_uploads, max_upload_bytes). The same
    bytes give the same id. An upload no unexpired job uses is deleted ADQ_UPLOAD_TTL_S after it was last sent."""
    data = file.file.read()  # bounded: the body guard stops an upload past ADQ_MAX_INPUT_BYTES as it streams
    sha, image = inputs.put(data, who, "file", allowed=lambda sha, size: entitlements.check_upload(who, sha, size))
    return Upload(id=sha, bytes=len(data), width=image.size[0], height=image.size[1])

"""Job parameters: resolved from a preset plus overrides, and checked before anything is written or enqueued."""

from __future__ import annotations

import math
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from adq.core.config import get_settings
from adq.core.errors import InputError
from adq.core.status import Strategy
from adq.method import hosted, sizes
from adq.method.presets import get_preset, settings_hash, student_settings

STRATEGIES = tuple(s.value for s in Strategy)
MAX_SEED = 2**53 - 1  # the largest integer every JSON client carries exactly (a float64 mantissa)
# The parameters a caller may set; the rest come from the preset. The HTTP request, the CLI flags and the
# batch items are derived from these fields (adq.jobs.schema), so each is described once, here.
SETTABLE = (
    "negative_prompt",
    "k",
    "k_max",
    "sigma",
    "strategy",
    "seed",
    "preset",
    "student_steps",
    "teacher_steps",
    "init_image",
    "strength",
    "control_image",
    "output_format",
    "output_quality",
    "width",
    "height",
    "aspect_ratio",
    "megapixels",
)
IMAGE_FIELDS = ("init_image", "control_image")


class JobParams(BaseModel):
    """Every parameter of a job, resolved from its preset and checked by ``check_inputs``. The job view extends
    this model, so the field list is written once."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    prompt: str
    """Text prompt (1 to ADQ_MAX_PROMPT_CHARS characters)"""
    preset: str
    """Model preset (`adq presets` lists them); default ADQ_PRESET"""
    seed: int
    """Random seed; the same seed gives the same final image"""
    k: int
    """Percent of jobs the teacher improves, 0-100"""
    k_max: int
    """Highest share the `fill` policy may raise k to while teachers are idle (default, and at least: k)"""
    sigma: float
    """Rollback value for refinement, in (0, 1]"""
    strategy: Strategy
    """How the teacher improves an image: refine or regenerate"""
    student_steps: int
    """Student denoising steps"""
    student_guidance: float
    """Student classifier-free guidance"""
    teacher_steps: int
    """Teacher denoising steps actually run"""
    teacher_guidance: float
    """Teacher classifier-free guidance"""
    width: int
    """Student image width (a multiple of 8; default the preset's, or resolved from aspect_ratio)"""
    height: int
    """Student image height (a multiple of 8; default the preset's, or resolved from aspect_ratio)"""
    init_image: str | None = None
    """Image-to-image: the input image, as an upload id (POST /v1/uploads), an https URL or a data: URI of at most
    1 MB; a job shows its upload id"""
    strength: float | None = None
    """Image-to-image: how far from init_image, in (0, 1] (default the preset's, 0.6)"""
    control_image: str | None = None
    """Controllable generation: the control image for the preset's ControlNet (an upload id, an https URL or a
    data: URI); a job shows its upload id"""
    output_format: Literal["png", "jpeg", "webp"] = "png"
    """The final image's format: png, jpeg or webp (default the preset's); the student image stays PNG"""
    output_quality: int | None = None
    """jpeg and webp quality, 1-100 (default the preset's, 80); unused for png"""
    negative_prompt: str | None = None
    """What the image should not show (for every family whose pipelines take one; it acts where guidance > 1)"""
    aspect_ratio: Literal["1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9"] | None = None
    """The size as a ratio, instead of width and height: resolved at megapixels to the nearest multiple of the
    family's latent factor (8, or 16 for FLUX and SD3); the job shows the resolved width and height"""
    megapixels: float | None = None
    """With aspect_ratio: the area in millions of pixels, 0.01-4 (default the preset's size's)"""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mode(self) -> str:
        """text2image, image2image, control, or image2image+control: each mode is calibrated on its own."""
        parts = [m for m, f in (("image2image", self.init_image), ("control", self.control_image)) if f]
        return "+".join(parts) or "text2image"

    def student_settings(self) -> dict:
        return student_settings(
            self.preset,
            self.student_steps,
            self.student_guidance,
            self.width,
            self.height,
            mode=self.mode,
            strength=self.strength,
        )

    def student_hash(self) -> str:
        return settings_hash(self.student_settings())

    def as_dict(self) -> dict[str, Any]:
        """The parameters alone (a subclass's extra fields left out), as stored in the jobs row."""
        return {name: getattr(self, name) for name in JobParams.model_fields}

    @classmethod
    def of(cls, row) -> JobParams:
        """The parameters of a jobs row (or any object with these attributes)."""
        values = {name: getattr(row, name) for name in cls.model_fields}
        if values["k_max"] is None:  # rows from before k_max existed
            values["k_max"] = values["k"]
        if values["output_format"] is None:  # rows from before output formats existed
            values["output_format"] = "png"
        return cls(**values)


def resolve(prompt: Any, *, preset: str | None = None, **overrides: Any) -> JobParams:
    """Fill unset parameters from the preset, then check every value. Raises InputError naming the bad value."""
    p = get_preset(preset or get_settings().preset)
    unknown = set(overrides) - set(JobParams.model_fields)
    if unknown:
        raise InputError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    values = {k: v for k, v in overrides.items() if v is not None}
    width, height = _size(p, values)
    # Built unvalidated: check_inputs gives the errors, each naming the bad value the way callers expect.
    params = JobParams.model_construct(
        prompt=prompt,
        preset=p.name,
        seed=values.get("seed", secrets.randbelow(2**31)),
        k=values.get("k", p.k),
        k_max=values.get("k_max"),
        sigma=values.get("sigma", p.sigma),
        strategy=values.get("strategy", p.strategy),
        student_steps=values.get("student_steps", p.student_steps),
        student_guidance=values.get("student_guidance", p.student_guidance),
        teacher_steps=values.get("teacher_steps", p.teacher_steps),
        teacher_guidance=values.get("teacher_guidance", p.teacher_guidance),
        width=width,
        height=height,
        init_image=values.get("init_image"),
        strength=values.get("strength", p.strength if values.get("init_image") else None),
        control_image=values.get("control_image"),
        output_format=values.get("output_format", p.output_format),
        output_quality=values.get("output_quality", p.output_quality),
        negative_prompt=values.get("negative_prompt"),
        aspect_ratio=values.get("aspect_ratio"),
        megapixels=values.get("megapixels"),
    )
    return check_inputs(params)


def _size(p, values: dict) -> tuple:
    """Width and height: given, resolved from an aspect ratio, or the preset's."""
    if values.get("aspect_ratio") is None and values.get("megapixels") is None:
        return values.get("width", p.student_size[0]), values.get("height", p.student_size[1])
    if "width" in values or "height" in values:
        raise InputError("aspect_ratio: give width and height, or aspect_ratio and megapixels, not both")
    return sizes.resolve(p, values.get("aspect_ratio"), values.get("megapixels"))


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InputError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value!r}")
    return value


def check_sigma(sigma: Any) -> float:
    sigma = _float("sigma", sigma)
    if not 0.0 < sigma <= 1.0:
        raise InputError(f"sigma={sigma} is out of range (0, 1]: it is the fraction of the noise schedule to roll back")
    floor = 1 / get_settings().max_steps  # one step of the longest schedule a job may ask for (ADQ_MAX_STEPS)
    if sigma < floor:
        raise InputError(f"sigma={sigma:g} is under its floor: sigma must be at least {floor:g} (1 / ADQ_MAX_STEPS)")
    return sigma


def check_k(k: Any) -> int:
    return _int("k", k, 0, 100)


def check_inputs(params: JobParams) -> JobParams:
    if not isinstance(params.prompt, str):
        raise InputError(f"prompt must be a string, got {type(params.prompt).__name__}")
    prompt = params.prompt.strip()
    if not prompt:
        raise InputError("prompt is empty")
    if len(prompt) > get_settings().max_prompt_chars:
        raise InputError(f"prompt has {len(prompt)} characters; the limit is {get_settings().max_prompt_chars}")
    if "\x00" in prompt:
        raise InputError("prompt contains a NUL character")
    if get_preset(params.preset).grammar == "shapes":
        from adq.method.shapes.world import parse

        try:
            parse(prompt)
        except ValueError:
            raise InputError(
                f"prompt {prompt!r} is not in the shapes world's grammar, e.g. \"a large red triangle "
                f'at the top left on a light blue background"'
            ) from None
    if params.strategy not in STRATEGIES:
        raise InputError(
            f"strategy={getattr(params.strategy, 'value', params.strategy)!r} is unknown; choose one "
            f"of {', '.join(STRATEGIES)}"
        )
    guidance = {}
    for name in ("student_guidance", "teacher_guidance"):
        guidance[name] = _float(name, getattr(params, name))
        if not 0.0 <= guidance[name] <= 50.0:
            raise InputError(f"{name}={guidance[name]} is out of range [0, 50]")
    side = get_settings().max_image_side
    width, height = _int("width", params.width, 8, side), _int("height", params.height, 8, side)
    for name, v in (("width", width), ("height", height)):
        if v % 8:
            raise InputError(f"{name}={v} must be a multiple of 8")
    sizes.check_allowed(get_preset(params.preset), width, height)
    k = check_k(params.k)
    # k_max is the most the fill policy may raise k to: one below k means k (it may not lower the share).
    k_max = k if params.k_max is None else max(k, _int("k_max", params.k_max, 0, 100))
    sigma, cap = check_sigma(params.sigma), get_settings().max_steps
    teacher_steps = _int("teacher_steps", params.teacher_steps, 1, cap)
    images = _check_images(params)
    output = hosted.check_output(params) | hosted.check_prompt_and_size(params)
    return JobParams(
        prompt=prompt,
        preset=params.preset,
        strategy=Strategy(params.strategy),
        seed=_int("seed", params.seed, 0, MAX_SEED),
        k=k,
        k_max=k_max,
        sigma=sigma,
        student_steps=_int("student_steps", params.student_steps, 1, cap),
        teacher_steps=teacher_steps,
        width=width,
        height=height,
        **guidance,
        **images,
        **output,
    )


def _check_images(params: JobParams) -> dict:
    """The image fields: references (resolved to upload ids by the job's submitter), a strength only with an
    init_image and within sigma's bounds, a control image only with a preset that names a ControlNet."""
    out = {}
    for name in IMAGE_FIELDS:
        ref = getattr(params, name, None)
        if ref is not None and (not isinstance(ref, str) or not ref.strip()):
            raise InputError(f"{name} must be an upload id, an https URL or a data: URI")
        out[name] = ref
    strength = getattr(params, "strength", None)
    if out["init_image"] is None:
        if strength is not None:
            raise InputError("strength is for image-to-image: give an init_image with it")
    else:
        try:
            out["strength"] = check_sigma(strength)
        except InputError as exc:
            raise InputError(str(exc).replace("sigma", "strength")) from None
    if out["control_image"] is not None and get_preset(params.preset).controlnet is None:
        raise InputError(f"control_image: preset {params.preset!r} names no ControlNet (its controlnet field)")
    return out

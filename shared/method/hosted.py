"""The fields hosted image APIs share, checked for a job: a negative prompt, the output format and quality, and
the size asked for as an aspect ratio (resolved in adq.method.sizes)."""

from __future__ import annotations

from functools import lru_cache

from adq.core.config import get_settings
from adq.core.errors import InputError
from adq.method import sizes
from adq.method.presets import OUTPUT_FORMATS, get_preset


def check_prompt_and_size(params) -> dict:
    """The negative prompt (blank is none), and the size as asked for (aspect ratio, megapixels), for the record."""
    out = {"aspect_ratio": getattr(params, "aspect_ratio", None), "megapixels": getattr(params, "megapixels", None)}
    if out["aspect_ratio"] is not None:
        sizes.ratio(out["aspect_ratio"])
    negative = getattr(params, "negative_prompt", None)
    if negative is not None:
        if not isinstance(negative, str):
            raise InputError(f"negative_prompt must be a string, got {type(negative).__name__}")
        negative = negative.strip() or None
    if negative is not None:
        limit = get_settings().max_prompt_chars
        if len(negative) > limit or "\x00" in negative:
            raise InputError(f"negative_prompt: at most {limit} characters and no NUL")
        if not takes_negative(params.preset):
            raise InputError(f"negative_prompt: preset {params.preset!r}'s pipelines take no negative prompt")
    return out | {"negative_prompt": negative}


@lru_cache(maxsize=64)
def takes_negative(preset_name: str) -> bool:
    """Whether every pipeline of the preset takes a negative prompt, read from the class each one's
    model_index.json names (FLUX.2's takes none). A model with no index (the null models, a hub id not yet
    downloaded) is taken at its word until it runs: its call then fails with the pipeline's own error."""
    import inspect

    import diffusers

    from adq.method.models.precision import pipeline_class

    p = get_preset(preset_name)
    for spec in filter(None, (p.student, p.teacher, p.regenerator)):
        try:
            name = pipeline_class(spec)
        except Exception:  # an index that cannot be read here: the worker's call decides
            name = None
        cls = getattr(diffusers, name, None) if name else None
        if cls is not None and "negative_prompt" not in inspect.signature(cls.__call__).parameters:
            return False
    return True


def check_output(params) -> dict:
    fmt = getattr(params, "output_format", "png")
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"output_format={fmt!r} is unknown; choose one of {', '.join(OUTPUT_FORMATS)}")
    quality = getattr(params, "output_quality", None)
    return {"output_format": fmt, "output_quality": None if quality is None else _quality(quality)}


def _quality(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise InputError(f"output_quality={value!r} must be an integer in [1, 100]")
    return value

"""Sizes by aspect ratio, as hosted image APIs take them (Replicate's ``aspect_ratio`` and ``megapixels``).

A ratio and an area resolve to the nearest width and height that are multiples of the family's latent factor: 8
for the UNet families (SD1.5, SDXL: the VAE's 8x), 16 for the transformer families that patch 2x2 latents (FLUX,
SD3/SD3.5, Z-Image and their kin), 32 for Sana's 32x VAE. Unset parts come from the preset: its student size's
area, and its aspect when only ``megapixels`` is given."""

from __future__ import annotations

import math
from functools import lru_cache

from adq.core.errors import InputError

ASPECT_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9")
MIN_MEGAPIXELS, MAX_MEGAPIXELS = 0.01, 4.0
PATCHED = ("Flux", "StableDiffusion3", "ZImage", "Chroma", "Lumina", "QwenImage", "HiDream")


@lru_cache(maxsize=64)
def latent_factor(preset_name: str) -> int:
    """Pixels per latent cell for the preset's student: what a side must be a multiple of."""
    from adq.method.models.precision import pipeline_class
    from adq.method.presets import get_preset

    try:
        family = pipeline_class(get_preset(preset_name).student) or ""
    except Exception:  # a model with no readable index (the null and shapes models): the UNet rule
        family = ""
    if family.startswith("Sana"):
        return 32
    return 16 if family.startswith(PATCHED) else 8


def ratio(aspect: str) -> float:
    if aspect not in ASPECT_RATIOS:
        raise InputError(f"aspect_ratio={aspect!r} is unknown; choose one of {', '.join(ASPECT_RATIOS)}")
    w, h = aspect.split(":")
    return int(w) / int(h)


def resolve(preset, aspect: str | None, megapixels) -> tuple[int, int]:
    """Width and height for ``aspect`` at ``megapixels``, each the nearest multiple of the latent factor."""
    width, height = preset.student_size
    r = ratio(aspect) if aspect is not None else width / height
    if megapixels is None:
        pixels = width * height
    else:
        if isinstance(megapixels, bool) or not isinstance(megapixels, (int, float)) or not math.isfinite(megapixels):
            raise InputError(f"megapixels must be a number, got {megapixels!r}")
        if not MIN_MEGAPIXELS <= megapixels <= MAX_MEGAPIXELS:
            raise InputError(f"megapixels={megapixels:g} is out of range [{MIN_MEGAPIXELS}, {MAX_MEGAPIXELS}]")
        pixels = megapixels * 1_000_000
    factor = latent_factor(preset.name)
    # Nearest multiple, a tie rounded up (round() would round it to even: 500 px to 496 at a factor of 8).
    w = max(factor, math.floor(math.sqrt(pixels * r) / factor + 0.5) * factor)
    h = max(factor, math.floor(math.sqrt(pixels / r) / factor + 0.5) * factor)
    return int(w), int(h)


def check_allowed(preset, width: int, height: int) -> None:
    """A preset that lists its sizes serves only those (each one warmed, or compiled, ahead of its jobs); compiled
    (ADQ_COMPILE), a preset that lists none serves its student size alone: another would compile inside a job."""
    from adq.core.config import get_settings

    sizes = [tuple(s) for s in preset.sizes]
    if not sizes and get_settings().compile:
        sizes = [tuple(preset.student_size)]
    if sizes and (width, height) not in sizes:
        shown = ", ".join(f"{w}x{h}" for w, h in sizes)
        why = "its sizes field" if preset.sizes else "ADQ_COMPILE warms only its student size: list more in sizes"
        raise InputError(f"size {width}x{height}: preset {preset.name!r} serves only {shown} ({why})")

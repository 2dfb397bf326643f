"""A safety filter on final images, off unless a preset names one (``safety:`` in the presets file).

- ``{kind: python, factory: "package.module:callable"}``: the callable (given ``device=`` when it takes it) returns
  an object whose ``check(prompts, images)`` gives one bool per image, True for an image to withhold;
- ``{kind: diffusers, source: FOLDER}``: diffusers' ``StableDiffusionSafetyChecker`` (the CompVis checker: CLIP
  image features against fixed concept embeddings), with the CLIP image processor saved beside it. Its weights
  are not shipped and cannot be downloaded here: a missing folder is refused at load with its path.

A flagged image is withheld: the job stores a placeholder in its place (``placeholder: black`` or ``blur``),
records ``nsfw`` and the filter's name, and the gateway links neither that image nor, when it was the student's,
the student image."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

from adq.core.errors import InputError, ModelError

SAFETY_KINDS = ("python", "diffusers")
PLACEHOLDERS = ("black", "blur")


@dataclass(frozen=True)
class SafetySpec:
    kind: str
    factory: str | None = None
    source: str | None = None
    placeholder: str = "black"

    @property
    def name(self) -> str:
        return (self.factory or f"diffusers:{Path(self.source or '').name}")[:64]


class PythonFilter:
    def __init__(self, spec: SafetySpec, device):
        from adq.core.plugins import load_object

        target = load_object(spec.factory, "safety factory")
        if not callable(target):
            raise InputError(f"safety factory {spec.factory!r} is not callable")
        inner = target(device=device) if "device" in inspect.signature(target).parameters else target()
        if not callable(getattr(inner, "check", None)):
            raise InputError(f"safety factory {spec.factory!r} returned {type(inner).__name__}, which has no check()")
        self.inner, self.spec = inner, spec

    def check(self, prompts: list[str], images: list) -> list[bool]:
        flags = list(self.inner.check(list(prompts), list(images)))
        if len(flags) != len(images):
            raise ModelError(f"safety filter {self.spec.name}: {len(flags)} verdicts for {len(images)} images")
        return [bool(f) for f in flags]


class DiffusersFilter:
    """diffusers' StableDiffusionSafetyChecker over PIL images (its ``has_nsfw_concepts``)."""

    def __init__(self, spec: SafetySpec, device):
        folder = Path(spec.source or "")
        if not (folder / "config.json").is_file():
            raise ModelError(
                f"safety checker weights not found at {folder} (a StableDiffusionSafetyChecker folder with its "
                "config.json and the CLIP image processor's preprocessor_config.json); none can be downloaded here"
            )
        from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
        from transformers import CLIPImageProcessor

        self.model = StableDiffusionSafetyChecker.from_pretrained(folder).to(device).eval()
        self.processor = CLIPImageProcessor.from_pretrained(folder)
        self.device, self.spec = device, spec

    def check(self, prompts: list[str], images: list) -> list[bool]:
        import numpy as np
        import torch

        pixels = self.processor(images, return_tensors="pt").pixel_values.to(self.device)
        arrays = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255 for im in images])
        with torch.no_grad():
            _, flags = self.model(images=arrays, clip_input=pixels.to(self.model.dtype))
        return [bool(f) for f in flags]


def load(spec: SafetySpec, device):
    return PythonFilter(spec, device) if spec.kind == "python" else DiffusersFilter(spec, device)


def placeholder(image, how: str):
    """What is stored instead of a withheld image: black, or blurred past recognition."""
    from PIL import Image, ImageFilter

    if how == "blur":
        return image.convert("RGB").filter(ImageFilter.GaussianBlur(radius=max(8, max(image.size) // 8)))
    return Image.new("RGB", image.size, (0, 0, 0))

"""Zero-cost student and teacher for the benchmarks and the embedded demo: the null preset's models.

They make a seeded image (flat, or textured at ADQ_NULL_*_SIDE) and spend a fixed time standing in for GPU time
(ADQ_NULL_STUDENT_MS, ADQ_NULL_TEACHER_MS, or a batch curve), in steps that a cancel can stop between."""

from __future__ import annotations

import time

from adq.core.config import get_settings
from adq.method import cancel
from adq.method.models.diffusion import TEACHER_SEED_OFFSET, Output
from adq.method.presets import Preset


def _null_image(seed: int, size):
    from PIL import Image

    return Image.new("RGB", tuple(size), ((seed * 37) % 256, (seed * 101) % 256, (seed * 199) % 256))


def textured_image(seed: int, side: int):
    """A seeded image that PNG-encodes like a real one: smooth colour fields plus fine grain, so encode and upload
    costs in benchmarks are those of model output, not of a flat 8x8 square."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (max(2, side // 32),) * 2 + (3,), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((side, side), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-6, 7, smooth.shape, dtype=np.int16)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


class _Spend:
    """Fixed cost per image: the time the image takes to make counts towards it, so the cost is ``ms`` whatever
    the side (a sleep stands in for GPU time: the CPU is free meanwhile, as it is while a GPU computes). The time
    left is spent in ``steps`` equal slices, each one a denoising step that a cancel can stop after."""

    def __init__(self, ms: float, steps: int = 1):
        self.start = time.perf_counter()
        self.ms = ms
        self.steps = max(1, steps)

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc):
        if kind is not None:
            return
        for step in range(1, self.steps + 1):
            left = self.start + self.ms / 1000 * step / self.steps - time.perf_counter()
            if left > 0:
                time.sleep(left)
            cancel.step_done(step)


def _null_pixels(seed: int, side: int, flat_size):
    return textured_image(seed, side) if side else _null_image(seed, flat_size)


def _null_output(seed: int, side: int, steps: int, flat_size, ms: float) -> Output:
    with _Spend(ms, steps):
        return Output(_null_pixels(seed, side, flat_size), steps)


def _null_student_ms(batch: int) -> float:
    """The null student's cost of a call on ``batch`` images: its batch curve, else ADQ_NULL_STUDENT_MS each."""
    s = get_settings()
    if s.null_student_curve:
        from adq.method.cost import curve

        return 1000 * curve(s.null_student_curve).seconds(batch)
    return s.null_student_ms * batch


class NullStudent:
    """Costs nothing (or ADQ_NULL_STUDENT_MS, standing in for GPU time): a flat image coloured by the seed, or a
    textured one at ADQ_NULL_STUDENT_SIDE."""

    def __init__(self, preset: Preset, device=None):
        self.preset = preset

    def generate(self, prompt, *, steps, guidance, width, height, seed, **images) -> Output:
        s = get_settings()
        return _null_output(seed, s.null_student_side, steps, (width, height), _null_student_ms(1))

    def generate_batch(self, prompts, seeds, *, steps, guidance, width, height, negative_prompt=None) -> list[Output]:
        """A batch costs its curve's a + c·b (ADQ_NULL_STUDENT_CURVE) at once, else ADQ_NULL_STUDENT_MS an image."""
        s = get_settings()
        if not s.null_student_curve:
            return [
                self.generate(p, steps=steps, guidance=guidance, width=width, height=height, seed=x)
                for p, x in zip(prompts, seeds)
            ]
        with _Spend(_null_student_ms(len(seeds)), steps):
            return [Output(_null_pixels(x, s.null_student_side, (width, height)), steps) for x in seeds]


class NullTeacher:
    def __init__(self, preset: Preset, device=None):
        self.preset = preset

    def refine(
        self, image, prompt, *, steps, sigma, guidance, seed, control_image=None, negative_prompt=None
    ) -> Output:
        from PIL import ImageOps

        s = get_settings()
        if s.null_teacher_side:
            return _null_output(seed + TEACHER_SEED_OFFSET, s.null_teacher_side, steps, None, s.null_teacher_ms)
        with _Spend(s.null_teacher_ms, steps):
            return Output(ImageOps.invert(image.convert("RGB")), steps)

    def regenerate(self, prompt, *, steps, guidance, seed, **images) -> Output:
        s = get_settings()
        size = self.preset.teacher_size
        return _null_output(seed + TEACHER_SEED_OFFSET, s.null_teacher_side, steps, size, s.null_teacher_ms)

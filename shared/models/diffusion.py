"""Student and teacher adapters over diffusers pipelines, plus zero-cost ones for the overhead benchmark.

Every adapter counts the denoising steps that really ran (callback_on_step_end), so the steps recorded per job are
measured, not assumed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from shared import cancel
from shared.config import get_settings
from shared.models.device import dtype_for, generator
from shared.models.weights import locate
from shared.presets import ModelSpec, Preset

TEACHER_SEED_OFFSET = 1_000_003  # the teacher draws its own noise, still fixed by the job's seed


def steps_for_strength(steps: int, sigma: float) -> int:
    """num_inference_steps that makes img2img with strength=sigma run exactly ``steps`` steps.

    diffusers runs min(int(n * strength), n) steps; the reference's int(T/sigma + 1) works for sigma < 1 but runs
    T+1 steps at sigma = 1. Search around T/sigma with diffusers' own float expression."""
    n = max(steps, math.ceil(steps / sigma))
    while n > steps and min(int(n * sigma), n) > steps:
        n -= 1
    while min(int(n * sigma), n) < steps:
        n += 1
    return n


class _StepCounter:
    def __init__(self):
        self.steps = 0

    def __call__(self, pipe, step, timestep, callback_kwargs):
        self.steps += 1
        cancel.step_done(self.steps)  # a cancelled job stops here and frees the model (shared.cancel)
        return callback_kwargs


def _load(cls, spec: ModelSpec, device):
    import diffusers

    kwargs = {"dtype": dtype_for(device), "local_files_only": not get_settings().allow_downloads}
    if spec.variant and device.type == "cuda":
        kwargs["variant"] = spec.variant
    if spec.unet:
        kwargs["unet"] = diffusers.UNet2DConditionModel.from_pretrained(
            locate(spec.unet, spec.label + " UNet", marker="config.json"), **kwargs
        )
    pipe = cls.from_pretrained(locate(spec.source, spec.label), **kwargs)
    if spec.scheduler:
        pipe.scheduler = getattr(diffusers, spec.scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


@dataclass
class Output:
    image: object  # PIL.Image
    steps: int


def _run(pipe, device, seed: int, **call) -> Output:
    """One image through a diffusers pipeline: seeded on the job's device, denoising steps counted as they run."""
    counter = _StepCounter()
    image = pipe(**call, generator=generator(device, seed), callback_on_step_end=counter, output_type="pil").images[0]
    return Output(image, counter.steps)


def _run_batch(pipe, device, seeds: list[int], prompts: list[str], **call) -> list[Output]:
    """Several images in one pipeline call, each with its own seeded generator (diffusers draws each item's
    noise from its own generator, so the noise is the one a single run would draw)."""
    counter = _StepCounter()
    gens = [generator(device, seed) for seed in seeds]
    images = pipe(prompt=prompts, **call, generator=gens, callback_on_step_end=counter, output_type="pil").images
    return [Output(image, counter.steps) for image in images]


class DiffusionStudent:
    def __init__(self, preset: Preset, device):
        from diffusers import AutoPipelineForText2Image

        self.device = device
        self.pipe = _load(AutoPipelineForText2Image, preset.student, device)

    def generate(self, prompt: str, *, steps: int, guidance: float, width: int, height: int, seed: int) -> Output:
        size = {"width": width, "height": height}
        return _run(
            self.pipe, self.device, seed, prompt=prompt, num_inference_steps=steps, guidance_scale=guidance, **size
        )

    def generate_batch(
        self, prompts: list[str], seeds: list[int], *, steps: int, guidance: float, width: int, height: int
    ) -> list[Output]:
        """Same-settings jobs in one call (ADQ_STUDENT_BATCH_MAX > 1). Not bit-identical to single runs on every
        model (README, "Efficiency"), which is why it is off by default."""
        call = {"num_inference_steps": steps, "guidance_scale": guidance, "width": width, "height": height}
        return _run_batch(self.pipe, self.device, seeds, prompts, **call)


class DiffusionTeacher:
    def __init__(self, preset: Preset, device):
        from diffusers import StableDiffusionXLImg2ImgPipeline

        self.preset, self.device = preset, device
        self.pipe = _load(StableDiffusionXLImg2ImgPipeline, preset.teacher, device)
        self._regen = None

    @property
    def regenerator(self):
        # Loaded on first use: refinement-only workers never pay for it.
        if self._regen is None:
            from diffusers import StableDiffusionXLPipeline

            spec = self.preset.regenerator
            self._regen = (
                StableDiffusionXLPipeline.from_pipe(self.pipe)
                if spec is None
                else _load(StableDiffusionXLPipeline, spec, self.device)
            )
            self._regen.set_progress_bar_config(disable=True)  # from_pipe does not carry it over
        return self._regen

    def _resize(self, image):
        from PIL import Image

        size = tuple(self.preset.teacher_size)
        return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)

    def refine(self, image, prompt: str, *, steps: int, sigma: float, guidance: float, seed: int) -> Output:
        strength = {"strength": sigma, "num_inference_steps": steps_for_strength(steps, sigma)}
        image = self._resize(image)
        return _run(
            self.pipe,
            self.device,
            seed + TEACHER_SEED_OFFSET,
            prompt=prompt,
            image=image,
            guidance_scale=guidance,
            **strength,
        )

    def regenerate(self, prompt: str, *, steps: int, guidance: float, seed: int) -> Output:
        width, height = self.preset.teacher_size
        size = {"width": width, "height": height, "num_inference_steps": steps}
        return _run(
            self.regenerator, self.device, seed + TEACHER_SEED_OFFSET, prompt=prompt, guidance_scale=guidance, **size
        )


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


def _null_output(seed: int, side: int, steps: int, flat_size, ms: float) -> Output:
    with _Spend(ms, steps):
        return Output(textured_image(seed, side) if side else _null_image(seed, flat_size), steps)


class NullStudent:
    """Costs nothing (or ADQ_NULL_STUDENT_MS, standing in for GPU time): a flat image coloured by the seed, or a
    textured one at ADQ_NULL_STUDENT_SIDE."""

    def __init__(self, preset: Preset, device=None):
        self.preset = preset

    def generate(self, prompt, *, steps, guidance, width, height, seed) -> Output:
        s = get_settings()
        return _null_output(seed, s.null_student_side, steps, (width, height), s.null_student_ms)

    def generate_batch(self, prompts, seeds, *, steps, guidance, width, height) -> list[Output]:
        return [
            self.generate(p, steps=steps, guidance=guidance, width=width, height=height, seed=x)
            for p, x in zip(prompts, seeds)
        ]


class NullTeacher:
    def __init__(self, preset: Preset, device=None):
        self.preset = preset

    def refine(self, image, prompt, *, steps, sigma, guidance, seed) -> Output:
        from PIL import ImageOps

        s = get_settings()
        if s.null_teacher_side:
            return _null_output(seed + TEACHER_SEED_OFFSET, s.null_teacher_side, steps, None, s.null_teacher_ms)
        with _Spend(s.null_teacher_ms, steps):
            return Output(ImageOps.invert(image.convert("RGB")), steps)

    def regenerate(self, prompt, *, steps, guidance, seed) -> Output:
        s = get_settings()
        size = self.preset.teacher_size
        return _null_output(seed + TEACHER_SEED_OFFSET, s.null_teacher_side, steps, size, s.null_teacher_ms)

"""Student and teacher adapters over diffusers pipelines of any family (the null preset's are in null.py).

Every adapter counts the denoising steps that really ran (callback_on_step_end), so the steps recorded per job are
measured, not assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adq.core.config import get_settings
from adq.method import cancel
from adq.method.models.device import generator
from adq.method.models.modes import Views, image_call, view_of
from adq.method.models.pipelines import Base, RolePipe, role_pipe
from adq.method.presets import Preset

TEACHER_SEED_OFFSET = 1_000_003  # the teacher draws its own noise, still fixed by the job's seed


class _ProbeScheduler:
    """Enough of a scheduler for an img2img pipeline's ``get_timesteps``: the step count comes from the pipeline's
    own strength arithmetic, whichever family it is, without running or loading anything."""

    order = 1

    def __init__(self, n: int):
        import torch

        self.timesteps = torch.arange(n, 0, -1)

    def set_begin_index(self, index: int) -> None:
        pass


def _floor_rule(n: int, sigma: float) -> int:
    """UNet families (SD1.5, SDXL): diffusers runs min(int(n * strength), n) steps."""
    return min(int(n * sigma), n)


def steps_run(pipe_cls, n: int, sigma: float) -> int:
    """Denoising steps an img2img pipeline of ``pipe_cls`` runs for num_inference_steps=n and strength=sigma.
    Flow-matching families (SD3, FLUX, Z-Image) run n - int(n - n * strength), one more than the UNet rule
    whenever n * strength is not whole."""
    get_timesteps = getattr(pipe_cls, "get_timesteps", None)
    if get_timesteps is None:
        return _floor_rule(n, sigma)
    probe = type("Probe", (), {"scheduler": _ProbeScheduler(n)})()
    return int(get_timesteps(probe, n, sigma, "cpu")[1])


def steps_for_strength(steps: int, sigma: float, pipe_cls=None, max_steps: int | None = None) -> int:
    """num_inference_steps that makes img2img with strength=sigma run exactly ``steps`` steps.

    Closed form plus a bisection over the pipeline's own arithmetic (at most log2(steps/sigma) probes), so any
    sigma ends quickly. The reference's int(T/sigma + 1) runs T+1 steps at sigma = 1 and divides by zero at 0.
    n is capped at ``max_steps`` (ADQ_MAX_STEPS): below steps / max_steps the capped schedule runs fewer steps
    than asked (the job records the steps that ran), and sigma's floor is 1 / max_steps, where one step runs."""
    from adq.core.errors import InputError

    cap = max_steps or get_settings().max_steps
    if not 0 < sigma <= 1:
        raise InputError(f"sigma={sigma} must be in (0, 1]")
    if steps < 1:
        raise InputError(f"teacher steps={steps} must be at least 1")
    if sigma * cap < 1:  # compared before dividing: steps / 5e-324 would overflow
        raise InputError(f"sigma={sigma} is under its floor: sigma must be at least {1 / cap:.6g} (1 / ADQ_MAX_STEPS)")
    if sigma * cap < steps:  # the schedule is capped: it runs what ADQ_MAX_STEPS scheduler steps run at sigma
        return cap
    hi = min(math.ceil(steps / sigma), cap) + 1
    run = (lambda n: steps_run(pipe_cls, n, sigma)) if pipe_cls is not None else (lambda n: _floor_rule(n, sigma))
    lo = steps  # run(n) <= n, so fewer than ``steps`` scheduler steps can never run ``steps``
    while lo < hi:  # the smallest n with run(n) >= steps; run is non-decreasing in n
        mid = (lo + hi) // 2
        if run(mid) >= steps:
            hi = mid
        else:
            lo = mid + 1
    if lo > cap or run(lo) != steps:
        raise InputError(f"no scheduler step count runs exactly {steps} steps at sigma={sigma}")
    return lo


class StepCounter:
    def __init__(self):
        self.steps = 0

    def __call__(self, pipe, step, timestep, callback_kwargs):
        self.steps += 1
        cancel.step_done(self.steps)  # a cancelled job stops here and frees the model (adq.method.cancel)
        return callback_kwargs


@dataclass
class Output:
    image: object  # PIL.Image
    steps: int


def _run(role: RolePipe, device, seed: int, **call) -> Output:
    """One image through a diffusers pipeline: seeded on the job's device, denoising steps counted as they run."""
    counter = StepCounter()
    role.activate()
    image = role.pipe(**call, generator=generator(device, seed), callback_on_step_end=counter, output_type="pil")
    return Output(image.images[0], counter.steps)


def _run_batch(role: RolePipe, device, seeds: list[int], prompts: list[str], **call) -> list[Output]:
    """Several images in one pipeline call, each with its own seeded generator (diffusers draws each item's
    noise from its own generator, so the noise is the one a single run would draw)."""
    counter = StepCounter()
    gens = [generator(device, seed) for seed in seeds]
    if isinstance(call.get("negative_prompt"), str):  # diffusers wants one per prompt when the prompts are a list
        call["negative_prompt"] = [call["negative_prompt"]] * len(prompts)
    role.activate()
    images = role.pipe(prompt=prompts, **call, generator=gens, callback_on_step_end=counter, output_type="pil").images
    return [Output(image, counter.steps) for image in images]


def _negative(negative_prompt: str | None) -> dict:
    """The call's negative prompt, only when the job has one: a pipeline object of the paper's API that takes none
    keeps working for every other job."""
    return {} if negative_prompt is None else {"negative_prompt": negative_prompt}


def default_size(pipe) -> tuple[int, int]:
    """The size a pipeline makes when not told: its denoiser's sample size in pixels (1024 for SDXL and FLUX)."""
    side = getattr(pipe, "default_sample_size", None)
    scale = getattr(pipe, "vae_scale_factor", None)
    if not side or not scale:
        unet = getattr(pipe, "unet", None)
        side, scale = (getattr(unet.config, "sample_size", 128), scale or 8) if unet is not None else (128, 8)
    return int(side * scale), int(side * scale)


def _device_of(pipe):
    import torch

    return getattr(pipe, "device", None) or torch.device("cpu")


class DiffusionStudent:
    def __init__(self, preset: Preset, device):
        self.device = device
        self.role = role_pipe(preset.student, device, "text2image")
        self.pipe = self.role.pipe
        net = preset.student_controlnet or preset.controlnet
        self.control_scale = net.scale if net else 1.0
        self.views = Views(lambda role, control: role_pipe(preset.student, device, role, net if control else None))

    @classmethod
    def of(cls, pipe) -> DiffusionStudent:
        """A student over a diffusers text-to-image pipeline you built yourself (the paper's API)."""
        self = cls.__new__(cls)
        self.device, self.pipe = _device_of(pipe), pipe
        self.role = RolePipe(pipe, Base(pipe))
        self.control_scale, self.views = 1.0, Views(lambda role, control: view_of(pipe, role, control))
        return self

    def generate(
        self,
        prompt: str,
        *,
        steps: int,
        guidance: float,
        width: int,
        height: int,
        seed: int,
        init_image=None,
        strength: float | None = None,
        control_image=None,
        negative_prompt: str | None = None,
    ) -> Output:
        negative = _negative(negative_prompt)
        if init_image is None and control_image is None:
            size = {"width": width, "height": height}
            call = {"num_inference_steps": steps, "guidance_scale": guidance, **size, **negative}
            return _run(self.role, self.device, seed, prompt=prompt, **call)
        view = self.views.get("image2image" if init_image is not None else "text2image", control_image is not None)
        call = image_call(view, steps, (width, height), init_image, strength, control_image, self.control_scale)
        return _run(view, self.device, seed, prompt=prompt, guidance_scale=guidance, **call, **negative)

    def generate_batch(
        self,
        prompts: list[str],
        seeds: list[int],
        *,
        steps: int,
        guidance: float,
        width: int,
        height: int,
        negative_prompt: str | None = None,
    ) -> list[Output]:
        """Same-settings jobs in one call (one negative prompt for all: it is part of what they share)."""
        call = {"num_inference_steps": steps, "guidance_scale": guidance, "width": width, "height": height}
        return _run_batch(self.role, self.device, seeds, prompts, **call, **_negative(negative_prompt))


class DiffusionTeacher:
    """Refines with the auto image-to-image pipeline and regenerates with the auto text-to-image one, both views
    of one loaded base (or of the preset's own regenerator, when it names other weights)."""

    def __init__(self, preset: Preset, device):
        self.device, self.size = device, tuple(preset.teacher_size)
        self.role = role_pipe(preset.teacher, device, "image2image")
        self.pipe = self.role.pipe
        spec = preset.regenerator or preset.teacher
        self._make_regen = lambda: role_pipe(spec, device, "text2image")
        self._regen = None
        net = preset.controlnet
        self.control_scale = net.scale if net else 1.0
        self.views = Views(lambda role, control: role_pipe(preset.teacher, device, role, net if control else None))

    @classmethod
    def of(cls, pipe, regenerator=None, size: tuple[int, int] | None = None) -> DiffusionTeacher:
        """A teacher over a diffusers image-to-image pipeline you built yourself (the paper's API). ``size`` None
        keeps the student image's size; regeneration uses ``regenerator``, else a text-to-image view of ``pipe``."""
        from diffusers import AutoPipelineForText2Image

        self = cls.__new__(cls)
        self.device, self.size, self.pipe = _device_of(pipe), size, pipe
        self.role = RolePipe(pipe, Base(pipe))

        def make_regen() -> RolePipe:
            regen = regenerator or AutoPipelineForText2Image.from_pipe(pipe)
            regen.set_progress_bar_config(disable=True)
            return RolePipe(regen, Base(regen))

        self._make_regen, self._regen = make_regen, None
        self.control_scale, self.views = 1.0, Views(lambda role, control: view_of(pipe, role, control))
        return self

    @property
    def regenerator(self) -> RolePipe:
        # Made on first use: refinement-only workers never pay for it (from_pipe shares the teacher's weights).
        if self._regen is None:
            self._regen = self._make_regen()
        return self._regen

    def _resize(self, image):
        from PIL import Image

        if self.size is None or image.size == tuple(self.size):
            return image
        return image.resize(tuple(self.size), Image.Resampling.LANCZOS)

    def refine(
        self,
        image,
        prompt: str,
        *,
        steps: int,
        sigma: float,
        guidance: float,
        seed: int,
        control_image=None,
        negative_prompt: str | None = None,
    ) -> Output:
        negative = _negative(negative_prompt)
        if control_image is not None:  # the ControlNet image-to-image view, with the job's control image
            view = self.views.get("image2image", True)
            image = self._resize(image)
            call = image_call(view, steps, image.size, image, sigma, control_image, self.control_scale) | negative
            return _run(view, self.device, seed + TEACHER_SEED_OFFSET, prompt=prompt, guidance_scale=guidance, **call)
        n = steps_for_strength(steps, sigma, type(self.pipe))
        call = {"strength": sigma, "num_inference_steps": n, "guidance_scale": guidance, **negative}
        image = self._resize(image)
        if self.role.accepts("width"):  # FLUX and Z-Image img2img take the size; SD and SDXL use the image's
            call |= {"width": image.size[0], "height": image.size[1]}
        return _run(self.role, self.device, seed + TEACHER_SEED_OFFSET, prompt=prompt, image=image, **call)

    def regenerate(
        self,
        prompt: str,
        *,
        steps: int,
        guidance: float,
        seed: int,
        init_image=None,
        strength: float | None = None,
        control_image=None,
        negative_prompt: str | None = None,
    ) -> Output:
        """From scratch: the job's own mode run by the teacher (image-to-image from the input image, with the
        control image when there is one)."""
        negative = _negative(negative_prompt)
        if init_image is not None or control_image is not None:
            view = self.views.get("image2image" if init_image is not None else "text2image", control_image is not None)
            size = self.size or (init_image.size if init_image is not None else default_size(view.pipe))
            call = image_call(view, steps, size, init_image, strength, control_image, self.control_scale) | negative
            return _run(view, self.device, seed + TEACHER_SEED_OFFSET, prompt=prompt, guidance_scale=guidance, **call)
        width, height = self.size or default_size(self.regenerator.pipe)
        size = {"width": width, "height": height, "num_inference_steps": steps, **negative}
        return _run(
            self.regenerator, self.device, seed + TEACHER_SEED_OFFSET, prompt=prompt, guidance_scale=guidance, **size
        )

    # Batches of the same settings (`adq tune`, `adq bench quality`): each item seeded as its single run is.
    def regenerate_batch(
        self, prompts: list[str], seeds: list[int], *, steps: int, guidance: float, negative_prompt: str | None = None
    ) -> list[Output]:
        width, height = self.size or default_size(self.regenerator.pipe)
        call = {"width": width, "height": height, "num_inference_steps": steps, "guidance_scale": guidance}
        call |= _negative(negative_prompt)
        return _run_batch(self.regenerator, self.device, [s + TEACHER_SEED_OFFSET for s in seeds], prompts, **call)

    def refine_batch(
        self,
        images: list,
        prompts: list[str],
        seeds: list[int],
        *,
        steps: int,
        sigma: float,
        guidance: float,
        negative_prompt: str | None = None,
    ) -> list[Output]:
        n = steps_for_strength(steps, sigma, type(self.pipe))
        images = [self._resize(image) for image in images]
        call = {"strength": sigma, "num_inference_steps": n, "guidance_scale": guidance, "image": images}
        call |= _negative(negative_prompt)
        if self.role.accepts("width"):
            call |= {"width": images[0].size[0], "height": images[0].size[1]}
        return _run_batch(self.role, self.device, [s + TEACHER_SEED_OFFSET for s in seeds], prompts, **call)

"""A job's mode on a diffusers model: the pipeline view per mode (text-to-image, image-to-image, and their ControlNet
variants, all sharing one loaded base) and the arguments of one call in a mode."""

from __future__ import annotations

from adq.method.models.pipelines import Base, RolePipe


def fit(image, size):
    from PIL import Image

    return image if image.size == tuple(size) else image.resize(tuple(size), Image.Resampling.LANCZOS)


class Views:
    """A model's pipelines per mode, made on first use from one base: text-to-image, image-to-image, and their
    ControlNet variants (auto-pipelines' from_pipe, so every view shares the loaded weights)."""

    def __init__(self, make):
        self._make, self._views = make, {}

    def get(self, role: str, control: bool) -> RolePipe:
        if (role, control) not in self._views:
            self._views[(role, control)] = self._make(role, control)
        return self._views[(role, control)]


def image_call(
    view: RolePipe, steps: int, size, init_image=None, strength=None, control_image=None, scale: float = 1.0
) -> dict:
    """The arguments of one call in a mode: image-to-image runs exactly ``steps`` steps at ``strength``; a control
    image goes where the pipeline takes it (``control_image`` beside an init image or for FLUX, else ``image``)."""
    from adq.method.models.diffusion import steps_for_strength

    call: dict = {"num_inference_steps": steps}
    if init_image is not None:
        call |= {"image": fit(init_image, size), "strength": strength}
        call["num_inference_steps"] = steps_for_strength(steps, strength, type(view.pipe))
        if view.accepts("width"):
            call |= {"width": size[0], "height": size[1]}
    else:
        call |= {"width": size[0], "height": size[1]}
    if control_image is not None:
        where = "control_image" if view.accepts("control_image") else "image"
        call |= {where: fit(control_image, size), "controlnet_conditioning_scale": scale}
    return call


def view_of(pipe, role: str, control: bool) -> RolePipe:
    """A mode's view of a pipeline you built yourself: the auto-pipeline of ``role`` on its components, with the
    ControlNet it already holds when ``control``."""
    import diffusers

    from adq.method.models.pipelines import ROLE_CLASSES

    net = getattr(pipe, "controlnet", None)
    if control and net is None:
        from adq.core.errors import InputError

        raise InputError("this pipeline holds no ControlNet: build it with controlnet=... for control images")
    extra = {"controlnet": net} if control else {}
    view = getattr(diffusers, ROLE_CLASSES[role]).from_pipe(pipe, **extra)
    view.set_progress_bar_config(disable=True)
    return RolePipe(view, Base(view))

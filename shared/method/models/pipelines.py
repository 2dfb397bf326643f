"""Diffusers pipelines for any family, loaded once per process and shared between roles.

No family's class is named here: a base is loaded with ``DiffusionPipeline.from_pretrained`` (its model_index.json
names the class), and each role gets the auto-pipeline's view of it through ``from_pipe``, which shares every
component. A base is keyed by its weights (source, swapped UNet, variant), so the teacher's refiner and its
regenerator, two presets that name one base, and a LoRA student on its teacher's base all hold one copy.

LoRA adapters are loaded into the shared base under names of their own and switched per call (``activate``): the
student's call enables its adapters, a call of a role without adapters disables them. Model calls in a process
take turns on its one model thread (adq.jobs.lane), so a switch cannot race another call.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from adq.core import process
from adq.core.config import get_settings
from adq.method.models import precision, residency
from adq.method.models.weights import hub_kwargs, locate
from adq.method.presets import ControlNetSpec, ModelSpec

ROLE_CLASSES = {"text2image": "AutoPipelineForText2Image", "image2image": "AutoPipelineForImage2Image"}


@dataclass
class Base:
    pipe: object
    adapters: set[str] = field(default_factory=set)  # LoRA adapter names loaded into this base's components


@dataclass
class RolePipe:
    """One role's pipeline and the adapters it runs with (names and scales)."""

    pipe: object
    base: Base
    adapters: tuple[tuple[str, float], ...] = ()

    def activate(self) -> None:
        if not self.base.adapters:
            return
        if self.adapters:
            self.pipe.enable_lora()
            self.pipe.set_adapters([n for n, _ in self.adapters], [s for _, s in self.adapters])
        else:
            self.pipe.disable_lora()

    def accepts(self, name: str) -> bool:
        return name in inspect.signature(self.pipe.__call__).parameters


def _base_key(spec: ModelSpec, device) -> tuple:
    variant = spec.variant if device.type == "cuda" else None
    return (spec.source, spec.unet, variant, str(device), precision.for_spec(spec, device))


def _load_base(spec: ModelSpec, device) -> Base:
    import diffusers

    dtype = precision.dtype_of(precision.for_spec(spec, device))
    kwargs = {"dtype": dtype, "local_files_only": not get_settings().allow_downloads}
    if spec.variant and device.type == "cuda":
        kwargs["variant"] = spec.variant
    if spec.unet:
        kwargs["unet"] = diffusers.UNet2DConditionModel.from_pretrained(
            locate(spec.unet, spec.label + " UNet", marker="config.json"), **kwargs, **hub_kwargs(spec.unet)
        )
    pipe = diffusers.DiffusionPipeline.from_pretrained(
        locate(spec.source, spec.label), **kwargs, **hub_kwargs(spec.source)
    )
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    if get_settings().compile:  # in place: the role views made with from_pipe share the compiled denoiser
        for name in ("unet", "transformer"):
            if getattr(pipe, name, None) is not None:
                getattr(pipe, name).compile()
    return Base(pipe)


def _estimate(source: str, label: str) -> int:
    try:
        return residency.files_bytes(locate(source, label))
    except Exception:  # the load itself reports what is missing
        return 0


def _admitted(key: tuple, label: str, load, measure, source: str, device):
    """``process.once`` of a model within this process's memory budget (adq.method.models.residency)."""
    res = residency.current(device)
    thing = process.once(
        key,
        lambda: res.admit(key, label, load, measure, estimate=lambda: _estimate(source, label)),
        close=lambda _thing: residency.forget(key),
    )
    res.touch(key)
    return thing


def base_for(spec: ModelSpec, device) -> Base:
    key = ("base", *_base_key(spec, device))
    measure = lambda base: held_bytes([base.pipe])  # noqa: E731
    return _admitted(key, spec.label, lambda: _load_base(spec, device), measure, spec.source, device)


def adapter_name(source: str) -> str:
    import hashlib

    return "adq_" + hashlib.sha256(source.encode()).hexdigest()[:12]


def _load_controlnet(spec: ControlNetSpec, device, dtype: str):
    import json
    from pathlib import Path

    import diffusers

    where = locate(spec.source, spec.label, marker="config.json")
    local = Path(where) / "config.json"
    # The config names the class (ControlNetModel, SD3ControlNetModel, FluxControlNetModel): no family is named here
    name = json.loads(local.read_text())["_class_name"] if local.is_file() else "ControlNetModel"
    kwargs = {"dtype": precision.dtype_of(dtype), "local_files_only": not get_settings().allow_downloads}
    return getattr(diffusers, name).from_pretrained(where, **kwargs, **hub_kwargs(spec.source)).to(device)


def controlnet_for(spec: ControlNetSpec, device, dtype: str = "float32"):
    """A ControlNet, loaded once per process in its base's dtype: the teacher and the student that share it hold one
    copy."""
    key = ("controlnet", spec.source, str(device), dtype)
    load = lambda: _load_controlnet(spec, device, dtype)  # noqa: E731
    return _admitted(key, spec.label, load, residency.module_bytes, spec.source, device)


def role_pipe(spec: ModelSpec, device, role: str, controlnet: ControlNetSpec | None = None) -> RolePipe:
    """The pipeline for ``role`` ("text2image" or "image2image") on the shared base of ``spec``; with a ControlNet,
    the auto-pipeline's ControlNet variant of that role (from_pipe shares the base's components)."""
    import diffusers

    base = base_for(spec, device)
    extra = {}
    if spec.scheduler:
        extra["scheduler"] = getattr(diffusers, spec.scheduler).from_config(base.pipe.scheduler.config)
    if controlnet is not None:
        extra["controlnet"] = controlnet_for(controlnet, device, str(base.pipe.dtype).removeprefix("torch."))
    pipe = getattr(diffusers, ROLE_CLASSES[role]).from_pipe(base.pipe, **extra)
    pipe.set_progress_bar_config(disable=True)  # from_pipe does not carry it over
    adapters = []
    for lora in spec.lora:
        name = adapter_name(lora.source)
        if name not in base.adapters:
            where = locate(lora.source, spec.label + " LoRA", marker=lora.weight_name)
            pipe.load_lora_weights(where, weight_name=lora.weight_name, adapter_name=name, **hub_kwargs(lora.source))
            base.adapters.add(name)
            residency.current().measured(("base", *_base_key(spec, device)), held_bytes([base.pipe]))
        adapters.append((name, lora.scale))
    return RolePipe(pipe, base, tuple(adapters))


def held_bytes(pipes) -> int:
    """Parameter and buffer bytes that ``pipes`` hold together, each tensor's storage counted once."""
    seen, total = set(), 0
    for pipe in pipes:
        for component in pipe.components.values():
            if not hasattr(component, "parameters"):
                continue
            for t in [*component.parameters(), *component.buffers()]:
                ptr = t.untyped_storage().data_ptr()
                if ptr not in seen:
                    seen.add(ptr)
                    total += t.untyped_storage().nbytes()
    return total

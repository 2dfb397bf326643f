"""Resolve ADQ_DEVICE in the process that runs inference (never in a forking parent: CUDA does not survive fork)."""

from __future__ import annotations

import logging

from adq.core.config import get_settings
from adq.core.errors import ModelError

_configured = False


def resolve_device(name: str | None = None):
    import torch

    name = (name or get_settings().device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ModelError(f"ADQ_DEVICE={name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"ADQ_DEVICE={name!r} but no CUDA device is visible to this process")
    return device


def configure_torch() -> None:
    """Per-process torch set-up: thread count and inference-only mode."""
    global _configured
    if _configured:
        return
    import torch

    if get_settings().torch_threads:
        torch.set_num_threads(get_settings().torch_threads)
    torch.set_grad_enabled(False)
    # diffusers' and transformers' per-load tqdm bars ("Loading pipeline components", and transformers 5's
    # "Loading weights") would land between a worker's JSON log lines; downloads keep the hub's own bars.
    import diffusers.utils.logging
    import transformers.utils.logging

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    # Their warnings go through this process's one root handler (adq.core.logs: JSON lines in a worker), not a
    # handler of their own bound to whatever stderr was when they were first set up (a test's closed capture).
    for library in (diffusers.utils.logging, transformers.utils.logging):
        library.disable_default_handler()
        library.enable_propagation()
    logging.getLogger("diffusers.models.modeling_utils").addFilter(drop_empty_fp32_warning)
    _configured = True


def drop_empty_fp32_warning(record: logging.LogRecord) -> bool:
    """diffusers 0.42's ``ModelMixin.to(dtype=...)`` warns that modules "should be kept in float32" even when the
    list is empty (it tests ``is not None`` on a list it has just defaulted to ``[]``). The SDXL img2img pipeline casts
    a ``force_upcast`` VAE twice per image, so every refine would log two such lines; a real list still shows."""
    return "should be kept in float32: []." not in record.getMessage()


def generator(device, seed: int):
    """A seeded generator on the device the noise is drawn on: CUDA generators on CUDA, CPU elsewhere."""
    import torch

    return torch.Generator(device="cuda" if device.type == "cuda" else "cpu").manual_seed(int(seed))

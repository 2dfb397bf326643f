"""The precision each model runs in: float32 on the CPU; on CUDA, the one its family needs.

- FLUX, SD3/SD3.5, Z-Image and the other transformer families whose text encoders are T5 or a language model run
  in bfloat16: their activations pass float16's range (65,504), which gives black or NaN images, and their model
  cards ask for bf16. On a GPU without bf16 (before Ampere) they fall back to float32, not to float16.
- SD1.5 and SDXL run in float16. SDXL's VAE overflows in float16 too; its config says ``force_upcast`` and its
  pipelines honour it (the VAE decodes in float32), so nothing is changed here.
- A preset's own ``dtype`` (per model: ``student: {..., dtype: float32}``) wins. ``ADQ_DTYPE`` sets one for every
  model that does not say, but float16 is refused for a family known to overflow unless the preset itself asks for
  it: a fleet-wide switch must not turn FLUX images black.

The family is the pipeline class its ``model_index.json`` names, read before anything is loaded."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from adq.core.config import get_settings
from adq.core.errors import InputError, ModelError

log = logging.getLogger(__name__)

# Pipeline class prefixes of the families whose activations overflow float16.
OVERFLOWS_IN_FP16 = ("Flux", "StableDiffusion3", "ZImage", "Chroma", "Lumina", "Sana", "QwenImage", "HiDream", "Wan")
NAMES = {
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float32": "float32",
    "fp32": "float32",
}


def canonical(name: str, where: str) -> str:
    try:
        return NAMES[name.strip().lower()]
    except KeyError:
        raise InputError(f"{where}: dtype {name!r} is not one of float16, bfloat16, float32") from None


def overflows_in_fp16(pipeline_class: str | None) -> bool:
    return bool(pipeline_class) and pipeline_class.startswith(OVERFLOWS_IN_FP16)


def pipeline_class(spec) -> str | None:
    """The pipeline class ``spec``'s model_index.json names, or None where it cannot be read without a download."""
    from adq.method.models.weights import locate

    where = locate(spec.source, spec.label)
    index = Path(where) / "model_index.json"
    if not index.is_file():  # a hub id: its cached index, if any (a download happens only when allowed)
        try:
            from huggingface_hub import hf_hub_download

            index = Path(
                hf_hub_download(where, "model_index.json", local_files_only=not get_settings().allow_downloads)
            )
        except Exception:
            return None
    return json.loads(index.read_text()).get("_class_name")


def choose(device, pipeline_cls: str | None, declared: str | None = None, label: str = "the model") -> str:
    """The dtype name for a model of ``pipeline_cls`` on ``device``; ``declared`` is the preset's own choice."""
    if device.type != "cuda":
        return "float32"  # half precision on the CPU is slow where it runs at all
    if declared:
        return canonical(declared, label)
    setting = get_settings().dtype
    overflows = overflows_in_fp16(pipeline_cls)
    if setting != "auto":
        if setting == "float16" and overflows:
            raise ModelError(
                f"ADQ_DTYPE=float16 would run {label} ({pipeline_cls}) in float16, which overflows for its family "
                "(black or NaN images): leave ADQ_DTYPE at auto, or give the preset `dtype: float16` for this model "
                "if it is meant"
            )
        return setting
    if overflows:
        import torch

        if torch.cuda.is_bf16_supported():
            return "bfloat16"
        log.warning("%s (%s) needs bfloat16, which this GPU lacks: running it in float32", label, pipeline_cls)
        return "float32"
    return "float16"


def dtype_of(name: str):
    import torch

    return getattr(torch, name)


def for_spec(spec, device) -> str:
    """The dtype name ``spec`` loads in on ``device``."""
    if device.type != "cuda":
        return "float32"
    return choose(device, pipeline_class(spec), getattr(spec, "dtype", None), spec.label)

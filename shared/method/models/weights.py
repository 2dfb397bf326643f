"""Find weights locally, or fail fast with a message that names them and says how to point at a local copy."""

from __future__ import annotations

import re
from pathlib import Path

from adq.core.config import get_settings
from adq.core.errors import ModelUnavailable
from adq.method.presets import ModelSpec


def _missing(label: str, source: str, what: str = "a diffusers folder with model_index.json") -> ModelUnavailable:
    return ModelUnavailable(
        f"{label} weights {source!r} are not available on this machine and downloads are off. "
        f"Put {what} at $ADQ_MODEL_DIR/{source} (ADQ_MODEL_DIR={get_settings().model_dir or 'unset'}), "
        f"or give the folder's path as the source, or set ADQ_ALLOW_DOWNLOADS=true where the hub is reachable."
    )


PINNED = re.compile(r"^(?P<repo>[^@\s]+)@(?P<revision>[0-9a-f]{40})$")


def hub_ref(source: str) -> tuple[str, str | None]:
    """``owner/name@<40-hex commit>`` -> (``owner/name``, the commit); anything else -> (source, None)."""
    m = PINNED.match(source)
    return (m["repo"], m["revision"]) if m else (source, None)


def hub_kwargs(source: str) -> dict:
    """What a from_pretrained call adds for a source fetched from the hub: the pinned commit, and safetensors only
    (a pickled checkpoint from the network can run code when it is loaded)."""
    repo, revision = hub_ref(source)
    if not get_settings().allow_downloads or revision is None:
        return {}
    return {"revision": revision, "use_safetensors": True}


def _pin_required(label: str, source: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"{label} weights {source!r} would be downloaded unpinned: with ADQ_ALLOW_DOWNLOADS=true a hub source must "
        f"name a commit, e.g. {source.split('@')[0]}@<40-hex commit sha>, so that what runs is what was reviewed"
    )


def locate(source: str, label: str, marker: str = "model_index.json") -> str:
    """A local folder for ``source``, or the hub id itself when downloads are allowed or it is in the hub cache."""
    if source.startswith("tiny:"):
        from adq.method.models import tiny, twins

        name = source.split(":", 1)[1]
        if name.endswith("controlnet"):
            return str(twins.ensure_controlnet(name))
        family = twins.family_of(name)
        return str((twins.ensure_built(family) if family else tiny.ensure_built()) / name)
    if source.startswith("data:"):  # weights committed with the project
        from adq.core.resources import data_path

        path = data_path(source.split(":", 1)[1])
        if not (path / marker).is_file():
            raise _missing(label, str(path), "the trained weights (run `adq train-shapes` to make them)")
        return str(path)
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / marker).is_file():
            raise _missing(label, source, f"{marker} (the folder exists but has no {marker})")
        return str(path)
    repo, revision = hub_ref(source)
    if get_settings().model_dir is not None:
        local = Path(get_settings().model_dir).expanduser() / repo
        if (local / marker).is_file():
            return str(local)
    if get_settings().allow_downloads:
        if revision is None:
            raise _pin_required(label, source)
        return repo
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo, marker, revision=revision)
    except Exception:  # a malformed id is just "not cached"
        cached = None
    if isinstance(cached, str):
        return repo
    raise _missing(label, source, "a folder with " + marker)


def check_available(spec: ModelSpec) -> None:
    """Cheap pre-flight for worker start-up: resolves every source without loading anything."""
    if spec.source.startswith("null:"):
        return
    locate(spec.source, spec.label)
    if spec.unet:
        locate(spec.unet, spec.label + " UNet", marker="config.json")
    for lora in spec.lora:
        locate(lora.source, spec.label + " LoRA", marker=lora.weight_name)

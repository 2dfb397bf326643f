"""Lets the image-reward package (1.5, its only release) import and score on transformers 5.

Its BLIP text encoder (``ImageReward/models/BLIP/med.py``) was written for transformers 4.2x. It imports
``apply_chunking_to_forward``, ``find_pruneable_heads_and_indices`` and ``prune_linear_layer`` from
``transformers.modeling_utils`` (moved to ``pytorch_utils`` in 4.56, or removed), and calls
``invert_attention_mask`` and ``get_head_mask``, which transformers 5 dropped from ``ModuleUtilsMixin``. The
upstream fix (zai-org/ImageReward PR #118) was merged but never released.

``install()`` puts back exactly those names, as the old versions defined them, and only where they are missing
(so on transformers 4.53, where the parity fixture was recorded, it changed nothing). tests/unit/
test_imagereward_compat.py checks each piece on a tiny BERT from med.py; the parity test (tests/unit/
test_imagereward.py) holds the full-size scores to the ones recorded on the old stack within 1e-4."""

from __future__ import annotations

import importlib


def _find_pruneable_heads_and_indices(heads, n_heads: int, head_size: int, already_pruned_heads: set):
    import torch

    mask = torch.ones(n_heads, head_size)
    heads = set(heads) - already_pruned_heads
    for head in heads:
        head = head - sum(1 if h < head else 0 for h in already_pruned_heads)
        mask[head] = 0
    mask = mask.view(-1).contiguous().eq(1)
    return heads, torch.arange(len(mask))[mask].long()


def _invert_attention_mask(self, encoder_attention_mask):
    import torch

    if encoder_attention_mask.dim() == 3:
        extended = encoder_attention_mask[:, None, :, :]
    else:
        extended = encoder_attention_mask[:, None, None, :]
    extended = extended.to(dtype=self.dtype)
    return (1.0 - extended) * torch.finfo(self.dtype).min


def _get_head_mask(self, head_mask, num_hidden_layers: int, is_attention_chunked: bool = False):
    if head_mask is None:
        return [None] * num_hidden_layers
    if head_mask.dim() == 1:
        head_mask = head_mask.unsqueeze(0).unsqueeze(0).unsqueeze(-1).unsqueeze(-1)
        head_mask = head_mask.expand(num_hidden_layers, -1, -1, -1, -1)
    elif head_mask.dim() == 2:
        head_mask = head_mask.unsqueeze(1).unsqueeze(-1).unsqueeze(-1)
    head_mask = head_mask.to(dtype=self.dtype)
    return head_mask.unsqueeze(-1) if is_attention_chunked else head_mask


def install() -> None:
    """Before ``import ImageReward``: the module-level names its med.py imports."""
    modeling_utils = importlib.import_module("transformers.modeling_utils")
    pytorch_utils = importlib.import_module("transformers.pytorch_utils")
    for name in ("apply_chunking_to_forward", "prune_linear_layer", "find_pruneable_heads_and_indices"):
        if not hasattr(modeling_utils, name):
            fallback = _find_pruneable_heads_and_indices if name == "find_pruneable_heads_and_indices" else None
            setattr(modeling_utils, name, getattr(pytorch_utils, name, fallback))


def _post_init_first(init_weights):
    # Transformers 5 models call post_init(), which records the tied-weight keys that init_weights() then reads;
    # med.py's models call init_weights() alone, as transformers 4 models did.
    def wrapped(self):
        if not hasattr(self, "all_tied_weights_keys") and hasattr(self, "post_init"):
            self.post_init()
        return init_weights(self)

    wrapped.adq_compat = True
    return wrapped


def patch_models() -> None:
    """After ``import ImageReward``: the mixin methods its BERT classes call, on those classes only."""
    med = importlib.import_module("ImageReward.models.BLIP.med")
    base = med.BertPreTrainedModel
    if not hasattr(base, "invert_attention_mask"):
        base.invert_attention_mask = _invert_attention_mask
    if not hasattr(base, "get_head_mask"):
        base.get_head_mask = _get_head_mask
    if not getattr(base.init_weights, "adq_compat", False) and _transformers_major() >= 5:
        base.init_weights = _post_init_first(base.init_weights)


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".", 1)[0])

"""Tiny SDXL-architecture pipelines and a tiny CLIP estimator, built locally from configs with fixed seeds.

They run through the same diffusers pipeline classes as SDXL, in seconds on a CPU, with no download. The weights are
random: they prove the plumbing, not image quality. Built once into <ADQ_HOME>/models/<VERSION> and then loaded with
from_pretrained like any other local weights.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from adq.core.config import get_settings

VERSION = "tiny-v3"  # v2: a tiny PickScore; v3: built on transformers 5, whose seeded random init differs from 4.x
ROLES = {"student": 1234, "teacher": 5678}  # role -> UNet init seed; the two UNets differ, the rest is shared
ESTIMATOR_SEED = 4242


def tiny_root() -> Path:
    return get_settings().models_home / VERSION


def _bytes_to_unicode() -> list[str]:
    # CLIP's byte-level alphabet; with these as the whole vocabulary and no merges the tokenizer works per character.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    chars = _bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + len(chars) for i, c in enumerate(chars)})
    # The end-of-text token gets the highest id: CLIP pools the text embedding at argmax(input_ids).
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(folder)
    return tok


def _text_config():
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=512,
        eos_token_id=2,
        pad_token_id=513,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-5,
        num_attention_heads=4,
        num_hidden_layers=5,
        vocab_size=514,
        hidden_act="gelu",
        projection_dim=32,
    )


# The tiny UNet's layout, shared by the SDXL tiny models and the SD1.5 twin (adq.method.models.twins).
UNET_LAYOUT = dict(
    block_out_channels=(32, 64),
    layers_per_block=2,
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
)


def tiny_vae():
    """A 2-block VAE with 4 latent channels (its random init follows torch's seed, set by the caller)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        sample_size=32,
    )


def _build_pipeline(seed: int, tokenizer, scheduler):
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    vae = tiny_vae()
    text_encoder = CLIPTextModel(_text_config())
    text_encoder_2 = CLIPTextModelWithProjection(_text_config())
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        **UNET_LAYOUT,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32,
        cross_attention_dim=64,
    )
    return assemble_sdxl(vae, (text_encoder, text_encoder_2), tokenizer, unet, scheduler)


def assemble_sdxl(vae, text_encoders, tokenizer, unet, scheduler):
    """An SDXL pipeline from its parts: both text encoders share one tokenizer (the tiny and shapes models)."""
    from diffusers import StableDiffusionXLPipeline

    first, second = text_encoders
    encoders = {"text_encoder": first, "text_encoder_2": second, "tokenizer": tokenizer, "tokenizer_2": tokenizer}
    return StableDiffusionXLPipeline(vae=vae, unet=unet, scheduler=scheduler, **encoders)


def _build_estimator(folder: Path, tokenizer, seed: int = ESTIMATOR_SEED) -> None:
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig

    torch.manual_seed(seed)
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        image_size=32,
        patch_size=4,
        projection_dim=32,
    )
    model = CLIPModel(
        CLIPConfig(text_config=_text_config().to_dict(), vision_config=vision.to_dict(), projection_dim=32)
    )
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def _build_pickscore(folder: Path, tokenizer) -> None:
    """PickScore's layout at tiny size: a CLIPModel and a CLIPProcessor (the tokenizer and an image processor)."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    _build_estimator(folder, tokenizer, seed=ESTIMATOR_SEED + 1)
    size = {"shortest_edge": 32}
    images = CLIPImageProcessor(size=size, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)


def build(root: Path) -> None:
    from diffusers import EulerDiscreteScheduler

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = write_tokenizer(Path(tmp) / "tokenizer")
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="trailing"
    )
    for role, seed in ROLES.items():
        _build_pipeline(seed, tokenizer, scheduler).save_pretrained(root / role, safe_serialization=True)
    _build_estimator(root / "estimator", tokenizer)
    _build_pickscore(root / "pickscore", tokenizer)


def ensure_built() -> Path:
    """Build the tiny weights once."""
    return build_once(tiny_root(), build)


def build_once(root: Path, builder) -> Path:
    """Run ``builder(folder)`` once for ``root``. Built in a temporary folder and renamed, so concurrent workers
    never load a half-written model: the loser of the rename race discards its copy."""
    if (root / "BUILT").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        builder(tmp)
        (tmp / "BUILT").write_text(root.name + "\n")
        try:
            tmp.rename(root)
        except OSError:
            if not (root / "BUILT").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root

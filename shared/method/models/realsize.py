"""Real-size twins: random-weight models with the real architectures of SD1.5, SDXL and FLUX.1, built from the
configs written below (never downloaded). Random weights cost exactly what trained ones cost in bytes and time,
so they measure resident memory per role and precision, and one denoising step, without a checkpoint.

Each config is the released model's, as its ``config.json`` on the hub states it (SD1.5's UNet is diffusers'
default ``UNet2DConditionModel``). ``build(family, component, meta=True)`` makes a component on the meta device
(``accelerate.init_empty_weights``): no memory, exact parameter counts, which is how a 12 B FLUX transformer is
counted on a machine with 24 GB."""

from __future__ import annotations

from contextlib import nullcontext

CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
CLIP_BIG_G = dict(
    vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20
)
T5_XXL = dict(vocab_size=32128, d_model=4096, d_ff=10240, d_kv=64, num_layers=24, num_heads=64)
SD_VAE = dict(
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2,
    latent_channels=4,
)
SDXL_UNET = dict(
    sample_size=128,
    block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20),
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
FLUX_TRANSFORMER = dict(
    patch_size=1,
    in_channels=64,
    num_layers=19,
    num_single_layers=38,
    attention_head_dim=128,
    num_attention_heads=24,
    joint_attention_dim=4096,
    pooled_projection_dim=768,
    guidance_embeds=True,  # FLUX.1-dev; schnell has none (a 5 M-parameter difference)
    axes_dims_rope=(16, 56, 56),
)
# Each family's components: (name, builder kind, config). The denoiser is the first.
FAMILIES = {
    "sd15": [
        ("unet", "unet", {"cross_attention_dim": 768, "sample_size": 64}),
        ("vae", "vae", SD_VAE),
        ("text_encoder", "clip", CLIP_L),
    ],
    "sdxl": [
        ("unet", "unet", SDXL_UNET),
        ("vae", "vae", SD_VAE),
        ("text_encoder", "clip", CLIP_L),
        ("text_encoder_2", "clip_projection", {**CLIP_BIG_G, "projection_dim": 1280}),
    ],
    "flux": [
        ("transformer", "flux", FLUX_TRANSFORMER),
        ("vae", "vae", {**SD_VAE, "latent_channels": 16, "use_quant_conv": False, "use_post_quant_conv": False}),
        ("text_encoder", "clip", CLIP_L),
        ("text_encoder_2", "t5", T5_XXL),
    ],
}
BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def build(family: str, component: str, meta: bool = True, seed: int = 0):
    """One component of ``family`` with random weights (on the meta device: shapes only)."""
    import torch
    from accelerate import init_empty_weights

    kind, config = next((k, c) for name, k, c in FAMILIES[family] if name == component)
    torch.manual_seed(seed)
    with init_empty_weights() if meta else nullcontext():
        return _make(kind, config)


def _make(kind: str, config: dict):
    import diffusers
    import transformers

    if kind == "unet":
        return diffusers.UNet2DConditionModel(**config)
    if kind == "vae":
        return diffusers.AutoencoderKL(**config)
    if kind == "flux":
        return diffusers.FluxTransformer2DModel(**config)
    if kind == "t5":
        t5 = transformers.T5EncoderModel(transformers.T5Config(**config, feed_forward_proj="gated-gelu"))
        t5.encoder.embed_tokens = t5.shared  # one embedding, as the released checkpoint ties them
        return t5
    text = transformers.CLIPTextConfig(**config, max_position_embeddings=77)
    if kind == "clip_projection":
        return transformers.CLIPTextModelWithProjection(text)
    return transformers.CLIPTextModel(text)


def parameters(module) -> int:
    return sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())


def counts(family: str) -> dict[str, int]:
    """Parameters and buffers of each component, counted on the meta device."""
    return {name: parameters(build(family, name)) for name, _, _ in FAMILIES[family]}


def resident_bytes(family: str, dtype: str) -> dict[str, int]:
    """Bytes each component holds in ``dtype``, and their total: what one copy of the pipeline keeps resident."""
    per = {name: n * BYTES[dtype] for name, n in counts(family).items()}
    return {**per, "total": sum(per.values())}

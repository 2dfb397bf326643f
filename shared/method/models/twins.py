"""Tiny random twins of the diffusion families people serve: SD1.5, SD3/3.5, FLUX.1 and Z-Image (whose text encoder
is a decoder-only language model, Qwen3), plus a random LoRA for the LoRA-student twin.

Each family has a student and a teacher that share the text encoders and VAE and differ in the denoiser's seed,
like the SDXL ``tiny`` pair. Tokenizers are built here too (CLIP's byte alphabet, a character Unigram in T5's
layout, a byte-level BPE in Qwen2's), so nothing is downloaded. The configs follow diffusers' own fast tests. The
weights are random: the twins prove that each family loads and runs through the auto-pipelines, not quality.
"""

from __future__ import annotations

from pathlib import Path

FAMILIES = ("sd15", "sd3", "flux", "zimage")
VERSION = "twins-v1"
DENOISER_SEEDS = {"student": 1234, "teacher": 5678}
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def t5_tokenizer():
    """T5's layout (a Unigram model, ``</s>`` appended) over single characters."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    chars = [chr(c) for c in range(33, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    vocab += [(c, -2.0) for c in chars] + [("▁" + c, -1.5) for c in chars]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", extra_ids=0)


def qwen_tokenizer():
    """Qwen2's byte-level BPE with no merges (one token per byte) and a minimal chat template."""
    from transformers import Qwen2Tokenizer

    from adq.method.models.tiny import _bytes_to_unicode

    vocab = {c: i for i, c in enumerate(_bytes_to_unicode())}
    vocab |= {s: len(vocab) + i for i, s in enumerate(QWEN_SPECIALS)}
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token=QWEN_SPECIALS[0], pad_token=QWEN_SPECIALS[0])
    tok.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIALS[1:])})
    tok.chat_template = CHAT_TEMPLATE
    return tok


def _clip_text(projection: bool):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from adq.method.models.tiny import _text_config

    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(_text_config())


def _t5_encoder(vocab_size: int):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)
    config.relative_attention_num_buckets, config.decoder_start_token_id = 8, 0
    return T5EncoderModel(config)


def _small_vae(latent_channels: int):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )


def _sd15(seed: int, clip_tokenizer):
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    from adq.method.models.tiny import UNET_LAYOUT, tiny_vae

    torch.manual_seed(0)
    vae = tiny_vae()
    text_encoder = _clip_text(projection=False)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**UNET_LAYOUT, cross_attention_dim=32)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="trailing"
    )
    parts = {"vae": vae, "text_encoder": text_encoder, "tokenizer": clip_tokenizer, "unet": unet}
    return StableDiffusionPipeline(
        **parts, scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )


def _sd3(seed: int, clip_tokenizer):
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(0)
    encoders = {
        "text_encoder": _clip_text(projection=True),
        "text_encoder_2": _clip_text(projection=True),
        "text_encoder_3": _t5_encoder(len(t5 := t5_tokenizer())),
    }
    tokenizers = {"tokenizer": clip_tokenizer, "tokenizer_2": clip_tokenizer, "tokenizer_3": t5}
    vae = _small_vae(latent_channels=4)
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=1,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,
        pooled_projection_dim=64,
        out_channels=4,
    )
    return StableDiffusion3Pipeline(
        transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(), **encoders, **tokenizers
    )


def _flux(seed: int, clip_tokenizer):
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(0)
    t5 = t5_tokenizer()
    encoders = {"text_encoder": _clip_text(projection=False), "text_encoder_2": _t5_encoder(len(t5))}
    vae = _small_vae(latent_channels=1)
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    return FluxPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        tokenizer=clip_tokenizer,
        tokenizer_2=t5,
        **encoders,
    )


def _zimage(seed: int, clip_tokenizer):
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = qwen_tokenizer()
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        block_out_channels=[32, 64],
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=32,
        sample_size=32,
        scaling_factor=0.3611,
        shift_factor=0.1159,
    )
    config = Qwen3Config(
        hidden_size=16,
        intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
    )
    text_encoder = Qwen3Model(config)
    torch.manual_seed(seed)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=16,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[8, 4, 4],
        axes_lens=[256, 32, 32],
    )
    with torch.no_grad():  # made with torch.empty: fixed values keep the twin deterministic (as diffusers' tests do)
        transformer.x_pad_token.copy_(torch.ones_like(transformer.x_pad_token))
        transformer.cap_pad_token.copy_(torch.ones_like(transformer.cap_pad_token))
    return ZImagePipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


BUILDERS = {"sd15": _sd15, "sd3": _sd3, "flux": _flux, "zimage": _zimage}


def build_family(root: Path, family: str, clip_tokenizer) -> None:
    """``root/<family>-student`` and ``root/<family>-teacher``: diffusers folders, loadable by the auto-pipelines."""
    for role, seed in DENOISER_SEEDS.items():
        BUILDERS[family](seed, clip_tokenizer).save_pretrained(root / f"{family}-{role}", safe_serialization=True)


def build_lora(folder: Path, base: Path, rank: int = 4, seed: int = 97) -> None:
    """A random LoRA on the SD1.5 twin's UNet attention projections, in diffusers' LoRA file format."""
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig, get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(base)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False
    )
    pipe.unet.add_adapter(config)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(pipe.unet))


def family_of(name: str) -> str | None:
    """The family a ``tiny:<name>`` source belongs to ("sd15-student" -> "sd15"), or None for the SDXL tiny set."""
    family = name.split("-", 1)[0]
    return family if family in FAMILIES else None


def ensure_built(family: str) -> Path:
    """Build one family's twins once (a few seconds), into <ADQ_HOME>/models/twins-v1/<family>."""
    import tempfile

    from adq.core.config import get_settings
    from adq.method.models.tiny import build_once, write_tokenizer

    def builder(folder: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            clip = write_tokenizer(Path(tmp) / "tokenizer")
        build_family(folder, family, clip)
        if family == "sd15":
            build_lora(folder / "sd15-lora", folder / "sd15-teacher")

    return build_once(get_settings().models_home / VERSION / family, builder)


CONTROLNET_BASES = {"controlnet": "tiny:teacher", "sd15-controlnet": "tiny:sd15-teacher"}


def build_controlnet(folder: Path, base: str) -> None:
    """A ControlNet made from a twin teacher's UNet (``ControlNetModel.from_unet``: its encoder's weights, zero
    convolutions out), with a conditioning embedding that downsamples by the twin VAE's own factor."""
    import math

    from diffusers import ControlNetModel, DiffusionPipeline

    from adq.method.models.weights import locate

    pipe = DiffusionPipeline.from_pretrained(locate(base, "twin teacher"))
    factor = pipe.vae_scale_factor
    channels = tuple(16 * 2**i for i in range(int(math.log2(factor)) + 1))
    ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=channels).save_pretrained(folder)


def ensure_controlnet(name: str) -> Path:
    """``tiny:controlnet`` (SDXL) and ``tiny:sd15-controlnet``: built once from their family's twin teacher."""
    from adq.core.config import get_settings
    from adq.method.models.tiny import build_once

    if name not in CONTROLNET_BASES:
        raise ValueError(f"no tiny ControlNet named {name!r}; choose one of {', '.join(CONTROLNET_BASES)}")
    root = get_settings().models_home / VERSION / "controlnets" / name
    return build_once(root, lambda folder: build_controlnet(folder, CONTROLNET_BASES[name]))

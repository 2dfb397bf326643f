"""Architectures of the shapes models: SDXL-style components (VAE, two CLIP text encoders, a text-conditioned
UNet) so the pipelines are diffusers' own SDXL classes, plus the attribute classifiers used as estimator and judge.
"""

from __future__ import annotations

import torch
from torch import nn

from adq.method.shapes import world

TEXT_WIDTH = 48
NOISE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    steps_offset=1,
    timestep_spacing="trailing",
)


def text_config(vocab_size: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TEXT_WIDTH,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=32,
        bos_token_id=vocab_size - 2,
        eos_token_id=2,
        pad_token_id=vocab_size - 1,
        projection_dim=TEXT_WIDTH,
        hidden_act="gelu",
    )


def vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=[32, 64],
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        layers_per_block=1,
        sample_size=world.SIZE,
    )


def unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        # Attention only at 8x8: the pooled text embedding conditions every block (SDXL's text_time embedding),
        # cross-attention at the coarse level places things; attention at 16x16 cost more than it gave on a CPU.
        sample_size=world.SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        transformer_layers_per_block=1,
        cross_attention_dim=2 * TEXT_WIDTH,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + TEXT_WIDTH,
        norm_num_groups=16,
    )


def encode(tokenizer, te1, te2, prompts: list[str]):
    """The SDXL pipeline's encode_prompt (clip_skip=None): penultimate hidden states of both encoders, pooled
    embedding of the second. Kept identical so training conditions the UNet exactly as serving does."""
    ids = tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    h1 = te1(ids, output_hidden_states=True).hidden_states[-2]
    out2 = te2(ids, output_hidden_states=True)
    return torch.cat([h1, out2.hidden_states[-2]], dim=-1), out2[0]


def time_ids(batch: int) -> torch.Tensor:
    s = world.SIZE
    return torch.tensor([[s, s, 0, 0, s, s]], dtype=torch.float32).repeat(batch, 1)


class AttributeNet(nn.Module):
    """A CNN with one softmax head per attribute (shape, colour, size, position, background)."""

    def __init__(self, widths=(32, 64, 96), dropout: float = 0.1):
        super().__init__()
        layers, c_in = [], 3
        for w in widths:
            layers += [nn.Conv2d(c_in, w, 3, padding=1), nn.GroupNorm(8, w), nn.SiLU(), nn.MaxPool2d(2)]
            c_in = w
        self.features = nn.Sequential(*layers, nn.Flatten())
        flat = c_in * (world.SIZE // 2 ** len(widths)) ** 2
        self.trunk = nn.Sequential(nn.Dropout(dropout), nn.Linear(flat, 128), nn.SiLU())
        self.heads = nn.ModuleList(nn.Linear(128, len(v)) for v in world.ATTRIBUTES.values())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        z = self.trunk(self.features(x))
        return [head(z) for head in self.heads]


def to_tensor(images) -> torch.Tensor:
    import numpy as np

    arr = np.stack([np.asarray(im.convert("RGB").resize((world.SIZE, world.SIZE)), dtype=np.float32) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0

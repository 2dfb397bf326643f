"""A ControlNet for the shapes teacher, and controllable generation through the adaptive cascade measured with it
(issue 22). `adq train-shapes-controlnet` trains it within a wall-clock budget; `adq bench controlnet` measures.

The control image is a mask of where the shape goes: its silhouette, white on black, drawn from the same scene as
the target. The ControlNet starts from the teacher's UNet (``ControlNetModel.from_unet``) and is trained with the
teacher frozen, on the training split; the student, a distilled UNet of the same architecture, uses it unchanged
(the claim under test: a ControlNet trained for the teacher works on the student without retraining).

The measurement, in the order a job takes its steps: the student generates with the mask (S steps), the
estimator scores the image against the prompt, below tau (the k-th percentile of the student's scores on
validation scenes: the control mode's own calibration) the teacher regenerates with the mask (T steps). The
teacher-only baseline generates every scene with the mask at the adaptive route's measured mean steps. The judge
grades both; differences are paired per scene with 95 % bootstrap intervals."""

from __future__ import annotations

import json
import random
import time

import numpy as np

from adq.core.resources import data_path
from adq.method.shapes import world

FOLDER = ("models", "shapes", "controlnet")  # under the data folder (adq.core.resources)


def mask_of(image, scene: world.Scene):
    """The shape's silhouette in ``image``: pixels away from the scene's background colour, white on black."""
    from PIL import Image

    bg = np.array(world.BACKGROUNDS[scene.background], dtype=np.int16)
    far = np.abs(np.asarray(image, dtype=np.int16) - bg).sum(axis=-1) > 40
    return Image.fromarray((far * 255).astype(np.uint8)).convert("RGB")


def _teacher():
    import torch
    from diffusers import StableDiffusionXLPipeline

    # Stored in float16 (small files); trained in float32, as the CPU serves it
    return StableDiffusionXLPipeline.from_pretrained(str(data_path("models", "shapes", "teacher")), dtype=torch.float32)


def train(minutes: float = 25.0, seed: int = 0, batch: int = 48, progress: bool = True) -> dict:
    """Train until ``minutes`` of wall clock pass; the ControlNet goes to data/models/shapes/controlnet."""
    import math

    import torch
    import torch.nn.functional as F
    from diffusers import ControlNetModel, DDPMScheduler
    from tqdm import tqdm

    from adq.method.shapes import components as C

    torch.manual_seed(seed)
    gen, rng = torch.Generator().manual_seed(seed), random.Random(seed)
    pipe = _teacher()
    channels = tuple(16 * 2**i for i in range(int(math.log2(pipe.vae_scale_factor)) + 1))
    net = ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=channels)
    for frozen in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
        frozen.requires_grad_(False)
    noise = DDPMScheduler(**{k: v for k, v in C.NOISE.items() if k != "timestep_spacing"})
    opt = torch.optim.AdamW(net.parameters(), lr=5e-4, weight_decay=0.01)
    scenes, started, steps, loss_ema = world.split("train"), time.monotonic(), 0, None
    bar = tqdm(desc="controlnet", disable=not progress)
    with torch.enable_grad():  # workers switch grad off process-wide for inference
        while time.monotonic() - started < minutes * 60:
            picked = [rng.choice(scenes) for _ in range(batch)]
            images = [world.render(s, rng) for s in picked]
            masks = C.to_tensor([mask_of(im, s) for im, s in zip(images, picked)]) * 0.5 + 0.5  # [0, 1]
            with torch.no_grad():
                x0 = pipe.vae.encode(C.to_tensor(images)).latent_dist.mean * pipe.vae.config.scaling_factor
                emb, pooled = C.encode(
                    pipe.tokenizer, pipe.text_encoder, pipe.text_encoder_2, [s.prompt() for s in picked]
                )
            eps, t = torch.randn(x0.shape, generator=gen), torch.randint(0, 1000, (batch,), generator=gen)
            noisy, extra = noise.add_noise(x0, eps, t), {"text_embeds": pooled, "time_ids": C.time_ids(batch)}
            down, mid = net(noisy, t, emb, controlnet_cond=masks, added_cond_kwargs=extra, return_dict=False)
            pred = pipe.unet(
                noisy,
                t,
                emb,
                added_cond_kwargs=extra,
                down_block_additional_residuals=down,
                mid_block_additional_residual=mid,
            ).sample
            loss = F.mse_loss(pred, eps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            loss_ema = loss.item() if loss_ema is None else 0.98 * loss_ema + 0.02 * loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{loss_ema:.4f}")
    net.eval().save_pretrained(data_path(*FOLDER))
    facts = {"steps": steps, "batch": batch, "minutes": round((time.monotonic() - started) / 60, 1), "loss": loss_ema}
    data_path(*FOLDER, "TRAINING.json").write_text(json.dumps(facts, indent=2) + "\n")
    return facts

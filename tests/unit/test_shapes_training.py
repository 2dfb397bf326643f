"""Training runs end to end at a tiny scale and writes weights the SDXL pipeline classes load."""

import json

import numpy as np
import torch

from adq.method.shapes import training as train
from adq.method.shapes import world


def test_train_all_smoke(tmp_path):
    timings = train.train_all(tmp_path, seed=1, scale=0.002, progress=False)
    assert set(timings) == {"vae_s", "teacher_s", "student_s", "estimator_s", "judge_s", "total_s"}
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    teacher = StableDiffusionXLPipeline.from_pretrained(
        tmp_path / "teacher", dtype=torch.float32, local_files_only=True
    )
    unet = UNet2DConditionModel.from_pretrained(tmp_path / "student-unet", dtype=torch.float32)
    img = teacher(
        world.split("val")[0].prompt(),
        num_inference_steps=2,
        guidance_scale=2.0,
        width=32,
        height=32,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert img.size == (32, 32) and unet.dtype == torch.float32
    meta = json.loads((tmp_path / "TRAINING.json").read_text())
    assert meta["seed"] == 1 and meta["steps"]["teacher"] == 6


def test_classifier_training_is_reproducible_by_seed():
    a = train.train_classifier((8, 8, 8), seed=5, steps=3, noise_std=0.3, progress=False)
    b = train.train_classifier((8, 8, 8), seed=5, steps=3, noise_std=0.3, progress=False)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy())

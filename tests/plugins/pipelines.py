"""A researcher's module: the paper's objects, built as its README builds them, on the tiny SDXL models.

The worker e2e test serves it: ``adq worker student|teacher --pipeline tests.plugins.pipelines:paper_tiny``."""

from __future__ import annotations

import os
from pathlib import Path

NAME = "paper-tiny"


def paper_tiny():
    """A zero-argument callable returning the object, as --pipeline accepts (the models load in the worker)."""
    import torch
    from diffusers import AutoPipelineForText2Image, StableDiffusionXLImg2ImgPipeline, UniPCMultistepScheduler

    from adaptive_diffusion import AdaptiveDiffusionPipeline
    from adq.method.models import tiny
    from tests.plugins.estimators import ImageRewardLike

    root = tiny.ensure_built()
    student = AutoPipelineForText2Image.from_pretrained(root / "student", dtype=torch.float32)
    teacher = StableDiffusionXLImg2ImgPipeline.from_pretrained(root / "teacher", dtype=torch.float32)
    teacher.scheduler = UniPCMultistepScheduler.from_config(teacher.scheduler.config)
    pipeline = AdaptiveDiffusionPipeline(
        estimator=ImageRewardLike(),
        student=student,
        teacher=teacher,
        name=NAME,
        num_inference_steps_student=2,
        num_inference_steps_teacher=3,
        sigma=0.5,
        k=50,
    )
    home = Path(os.environ.get("ADQ_HOME", ".adq"))
    pipeline.calc_score_percentiles(
        file_path=home / "paper-tiny-percentiles.json",
        num_inference_steps_student=2,
        n_samples=24,
        width=32,
        height=32,
        progress=False,
    )
    return pipeline

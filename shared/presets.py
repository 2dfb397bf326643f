"""Model presets: which student, teacher and estimator serve a job, and their serving settings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from shared.errors import InputError
from shared.status import Strategy

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
PERCENTILES_DIR = DATA_DIR / "percentiles"


@dataclass(frozen=True)
class ModelSpec:
    """Where a diffusion pipeline comes from. ``source`` is a hub id, a local folder, or "tiny:<role>"."""

    source: str
    label: str  # human name used in error messages, e.g. "SDXL-Turbo"
    unet: str | None = None  # a separate UNet repo (LCM-SDXL swaps the base UNet)
    variant: str | None = None  # "fp16" weight files, used on CUDA only
    scheduler: str | None = None  # diffusers scheduler class to swap in


@dataclass(frozen=True)
class EstimatorSpec:
    kind: str  # "imagereward" | "tiny" | "null"


@dataclass(frozen=True)
class Preset:
    name: str
    student: ModelSpec
    teacher: ModelSpec
    student_steps: int
    student_guidance: float
    student_size: tuple[int, int]  # (width, height) the student generates at
    teacher_steps: int
    teacher_guidance: float
    teacher_size: tuple[int, int]  # the teacher's resolution; the student image is resized to it before refinement
    sigma: float
    estimator: EstimatorSpec = EstimatorSpec("imagereward")
    k: int = 50
    strategy: Strategy = Strategy.REFINE
    regenerator: ModelSpec | None = None  # text2img model for regeneration; None means the teacher's components
    percentiles_file: str | None = None  # shipped calibration under data/percentiles/; default "<name>.json"
    grammar: str | None = None  # "shapes": prompts must parse in the shapes world (its estimator grades attributes)
    notes: str = ""

    @property
    def percentiles_path(self) -> Path | None:
        return PERCENTILES_DIR / (self.percentiles_file or f"{self.name}.json")


def student_settings(preset: str, steps: int, guidance: float, width: int, height: int) -> dict:
    """The student settings a calibration must match; their hash keys the calibration table."""
    spec = get_preset(preset).student
    return {
        "preset": preset,
        "student": spec.source,
        "unet": spec.unet,
        "steps": int(steps),
        "guidance": round(float(guidance), 6),
        "width": int(width),
        "height": int(height),
    }


def settings_hash(student: dict) -> str:
    return hashlib.sha256(json.dumps(student, sort_keys=True).encode()).hexdigest()[:16]


SDXL_BASE = "stabilityai/stable-diffusion-xl-base-1.0"

PRESETS: dict[str, Preset] = {
    "sdxl-turbo": Preset(
        name="sdxl-turbo",
        student=ModelSpec("stabilityai/sdxl-turbo", "SDXL-Turbo", variant="fp16"),
        teacher=ModelSpec(
            "stabilityai/stable-diffusion-xl-refiner-1.0",
            "SDXL-refiner",
            variant="fp16",
            scheduler="UniPCMultistepScheduler",
        ),
        regenerator=ModelSpec(SDXL_BASE, "SDXL-base", variant="fp16", scheduler="UniPCMultistepScheduler"),
        student_steps=2,
        student_guidance=0.0,
        student_size=(512, 512),
        teacher_steps=4,
        teacher_guidance=8.0,
        teacher_size=(1024, 1024),
        sigma=0.3,
        notes="Percentiles from the reference implementation (DiffusionDB prompts, 2 steps, guidance 0).",
    ),
    "lcm-sdxl": Preset(
        name="lcm-sdxl",
        student=ModelSpec(
            SDXL_BASE, "LCM-SDXL", unet="latent-consistency/lcm-sdxl", variant="fp16", scheduler="LCMScheduler"
        ),
        teacher=ModelSpec(SDXL_BASE, "SDXL-base", variant="fp16", scheduler="UniPCMultistepScheduler"),
        student_steps=4,
        student_guidance=8.0,
        student_size=(1024, 1024),
        teacher_steps=12,
        teacher_guidance=8.0,
        teacher_size=(1024, 1024),
        sigma=0.7,
        notes="The reference sampled these percentiles at guidance 0.0, not the 8.0 it serves with: jobs are "
        "refused until `adq calibrate --preset lcm-sdxl` records a matching calibration.",
    ),
    "tiny": Preset(
        name="tiny",
        student=ModelSpec("tiny:student", "tiny student"),
        teacher=ModelSpec("tiny:teacher", "tiny teacher", scheduler="UniPCMultistepScheduler"),
        estimator=EstimatorSpec("tiny"),
        student_steps=2,
        student_guidance=0.0,
        student_size=(32, 32),
        teacher_steps=4,
        teacher_guidance=5.0,
        teacher_size=(32, 32),
        sigma=0.5,
        notes="Random weights built locally from configs with fixed seeds: proves the plumbing, not quality.",
    ),
    # Trained here, on the CPU, on a synthetic world (see shared/shapes): recognisable images, meaningful scores.
    "shapes": Preset(
        name="shapes",
        student=ModelSpec(
            "data:models/shapes/teacher",
            "shapes student (LCM-distilled)",
            unet="data:models/shapes/student-unet",
            scheduler="LCMScheduler",
        ),
        teacher=ModelSpec("data:models/shapes/teacher", "shapes teacher"),
        estimator=EstimatorSpec("shapes"),
        student_steps=2,
        student_guidance=0.0,
        student_size=(32, 32),
        # Regeneration is the default: on held-out prompts it beats both baselines at matched budgets, while
        # refinement (best at sigma 0.7) cannot fix a wrong shape or position (README, "Quality benchmark").
        teacher_steps=20,
        teacher_guidance=3.0,
        teacher_size=(32, 32),
        sigma=0.7,
        strategy=Strategy.REGENERATE,
        grammar="shapes",
        notes="Weights committed under data/models/shapes, trained by `adq train-shapes`.",
    ),
    # Costs nothing: used by the overhead benchmark to measure the queue system itself.
    "null": Preset(
        name="null",
        student=ModelSpec("null:student", "null student"),
        teacher=ModelSpec("null:teacher", "null teacher"),
        estimator=EstimatorSpec("null"),
        student_steps=1,
        student_guidance=0.0,
        student_size=(8, 8),
        teacher_steps=1,
        teacher_guidance=0.0,
        teacher_size=(8, 8),
        sigma=0.5,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}") from None

"""`adq calibrate`: sample the student under exactly the serving settings and tabulate estimator percentiles.

The reference implementation calibrated with guidance 0.0, no seed and no resize while serving with other
settings, so its tau did not match what it served. Here every sample goes through the same parameter resolution
and cascade steps as a job, and the settings hash is recorded with the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from adq.core.config import get_settings
from adq.jobs.db import calibrations
from adq.method import cascade
from adq.method import percentiles as cal
from adq.method.models import registry
from adq.method.params import resolve
from adq.method.presets import get_preset


@dataclass(frozen=True)
class CalibrationResult:
    percentiles: cal.Percentiles
    calibration_id: int | None
    path: Path


def calibrate(
    prompts_file: str | Path,
    *,
    preset: str | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    batch_size: int = 8,
    record: bool = True,
    progress: bool = True,
    image: str | Path | None = None,
    strength: float | None = None,
    control: str | Path | None = None,
    **student_overrides,
) -> CalibrationResult:
    """Sample the student on the prompts. With ``image`` (a file, or a folder of them, cycled) and ``strength`` the
    image-to-image mode is calibrated, with ``control`` the ControlNet mode: each mode's scores follow their own
    distribution, so each has its own calibration, keyed by its mode and strength."""
    preset_ = get_preset(preset or get_settings().preset)
    prompts = cal.read_prompts(prompts_file)
    n = n_samples or len(prompts)
    inits, controls = input_images(image, "--image"), input_images(control, "--control")
    modes = {"init_image": "calibration" if inits else None, "control_image": "calibration" if controls else None}
    if strength is not None:
        modes["strength"] = strength
    # Cycle the prompt list when asked for more samples than prompts; each sample gets its own seed.
    jobs = [
        resolve(prompts[i % len(prompts)], preset=preset_.name, seed=seed + i, **modes, **student_overrides)
        for i in range(n)
    ]
    student_settings = jobs[0].student_settings()
    student, estimator = registry.student(preset_.name), registry.estimator(preset_.name)
    scores: list[float] = []
    bar = tqdm(total=n, desc=f"calibrating {preset_.name} ({jobs[0].mode})", unit="img", disable=not progress)
    for start in range(0, n, batch_size):
        chunk = jobs[start : start + batch_size]
        images = [cascade.generate(student, p, _inputs(inits, controls, start + i)).image for i, p in enumerate(chunk)]
        scores += estimator.score([p.prompt for p in chunk], images)
        bar.update(len(chunk))
    bar.close()
    meta = {
        "preset": preset_.name,
        "student_settings": student_settings,
        "settings_hash": jobs[0].student_hash(),
        "n_samples": n,
        "seed": seed,
        "prompts_file": str(prompts_file),
        "estimator": preset_.estimator.kind,
        "mode": jobs[0].mode,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    percentiles = cal.from_scores(scores, meta)
    path = (
        Path(out) if out else get_settings().home_dir / "calibrations" / f"{preset_.name}-{meta['settings_hash']}.json"
    )
    cal.save(percentiles, path)
    cal_id = (
        calibrations.record(student_settings, percentiles, n_samples=n, source=str(prompts_file)) if record else None
    )
    return CalibrationResult(percentiles, cal_id, path)


def input_images(path: str | Path | None, flag: str) -> list:
    """The images of a file or a folder (sorted by name), decoded under the serving limits."""
    from adq.core.errors import InputError
    from adq.jobs import inputs

    if path is None:
        return []
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise InputError(f"{flag} {path}: no image file there")
    return [inputs.check(f.read_bytes(), f"{flag} {f.name}") for f in files]


def _inputs(inits: list, controls: list, i: int) -> cascade.Inputs:
    return cascade.Inputs(
        init=inits[i % len(inits)] if inits else None, control=controls[i % len(controls)] if controls else None
    )


def record_file(path: str | Path, *, preset: str, **student_overrides) -> CalibrationResult:
    """Record a percentiles JSON made elsewhere (``calc_score_percentiles``, or the reference's own files) as the
    preset's calibration. The student settings come from the file's meta when it has them (ours does), else from
    the preset's defaults and the overrides given; the file's settings win, since they are what was sampled."""
    percentiles = cal.load(path)
    found = percentiles.meta.get("student_settings") or {}
    params = resolve(
        "calibration",
        preset=preset,
        seed=0,
        student_steps=found.get("steps", student_overrides.get("student_steps")),
        student_guidance=found.get("guidance", student_overrides.get("student_guidance")),
        width=found.get("width", student_overrides.get("width")),
        height=found.get("height", student_overrides.get("height")),
    )
    settings = params.student_settings()
    n = percentiles.meta.get("n_samples")
    cal_id = calibrations.record(settings, percentiles, n_samples=n, source=f"{path}")
    return CalibrationResult(percentiles, cal_id, Path(path))

"""`adq bench editing`: image-to-image through the adaptive cascade, measured on the shapes world (issue 22).

A case is an input image (the rendered scene of a held-out prompt) and a prompt that changes one attribute of it:
its colour, its size or its position. Steps, in the order a job takes them:

1. the student edits the input (image-to-image at strength STRENGTH, S steps);
2. the shapes estimator scores the edit against the edited prompt;
3. below tau (the k-th percentile of the student's edit scores on the validation split's cases: the edit mode's
   own calibration) the teacher redoes the edit (its own image-to-image from the input at the same strength,
   T steps), the preset's regenerate strategy;
4. the judge, a second classifier that never routes, grades the final image.

The teacher-only baseline edits every case itself at the adaptive route's mean steps (S + T k / 100, rounded), so
both spend the same steps per image on average. Differences are paired per case, with the 95 % bootstrap
interval (bench.quality)."""

from __future__ import annotations

import json
import random
import time
from dataclasses import astuple, replace
from pathlib import Path

import numpy as np

from adq.method import percentiles as cal
from adq.method.models import registry
from adq.method.models.estimators import load_estimator
from adq.method.presets import get_preset
from adq.method.shapes import world
from adq.method.stats import paired_bootstrap_ci

EDITED = ("color", "size", "position")
STRENGTH = 0.6  # SDEdit's strength in the paper's summary
KS = (20, 40, 60)


def cases(split: str, n: int, seed: int) -> list[tuple[str, str, str]]:
    """(source prompt, edited prompt, what changed): one attribute changed to another of its values."""
    rng = random.Random(seed)
    scenes = world.split(split)
    out = []
    for i in range(n):
        scene = scenes[rng.randrange(len(scenes))]
        what = EDITED[i % len(EDITED)]
        value = rng.choice([v for v in world.ATTRIBUTES[what] if v != getattr(scene, what)])
        out.append((scene.prompt(), replace(scene, **{what: value}).prompt(), what))
    return out


def _edit(view, device, prompts, images, seeds, steps: int, guidance: float, strength: float = STRENGTH) -> list:
    from adq.method.models.device import generator
    from adq.method.models.diffusion import steps_for_strength

    n = steps_for_strength(steps, strength, type(view.pipe))
    gens = [generator(device, s) for s in seeds]
    view.activate()
    call = dict(strength=strength, num_inference_steps=n, guidance_scale=guidance, output_type="pil")
    return view.pipe(prompt=prompts, image=images, generator=gens, **call).images


def routed_below(scores, tau: float | None, k: int) -> np.ndarray:
    """Which cases the teacher improves at share k: the serving decision (percentiles.below_cutoff) per case."""
    return np.array([cal.below_cutoff(float(x), tau, k) for x in scores])


def matched(k: int, routed, improved, grade: dict, S: int, T: int, teacher_alone) -> dict:
    """One budget: the adaptive route's grades (``improved`` where routed, the student's elsewhere) against the
    teacher alone at the route's measured mean steps, paired per case. ``teacher_alone(steps)`` grades that run;
    each step count is run once (``grade`` keeps it)."""
    adaptive = np.where(routed, improved, grade["student"])
    mean_steps = S + T * routed.mean()
    budget = max(1, round(mean_steps))
    if f"teacher@{budget}" not in grade:
        grade[f"teacher@{budget}"] = np.array(teacher_alone(budget))
    baseline = grade[f"teacher@{budget}"]
    lo, hi = paired_bootstrap_ci(adaptive, baseline)
    return {
        "k": k,
        "teacher_share": float(routed.mean()),
        "adaptive_mean_steps": float(mean_steps),
        "teacher_only_steps": budget,
        "adaptive": float(adaptive.mean()),
        "teacher_only": float(baseline.mean()),
        "difference": float((adaptive - baseline).mean()),
        "ci95": [lo, hi],
    }


def run(n: int = 300, n_val: int = 150, seed: int = 0, batch: int = 50, out: str | Path = "data/results") -> dict:
    preset = get_preset("shapes")
    student, teacher = registry.student("shapes"), registry.teacher("shapes")
    router = registry.estimator("shapes")
    judge = load_estimator(preset.judge, student.device)
    s_view = student.views.get("image2image", False)
    t_view = teacher.views.get("image2image", False)
    S, T = preset.student_steps, preset.teacher_steps

    def edits(view, rows, steps, guidance, offset, sources=None, strength=STRENGTH):
        images = []
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            inputs = sources[i : i + batch] if sources else [world.render(world.parse(src)) for src, _, _ in chunk]
            seeds = [seed + offset + i + j for j in range(len(chunk))]
            dst = [d for _, d, _ in chunk]
            images += _edit(view, view.pipe.device, dst, inputs, seeds, steps, guidance, strength)
        return images

    t0 = time.perf_counter()
    # 1-2. The edit mode's calibration: the student's scores on the validation split's cases
    val = cases("val", n_val, seed + 1)
    val_scores = router.score([d for _, d, _ in val], edits(s_view, val, S, preset.student_guidance, 10_000))
    percentiles = cal.from_scores(val_scores, {"preset": "shapes", "mode": "image2image", "strength": STRENGTH})
    # 1-4. Held-out cases: the student's edit, the teacher's full edit, and the teacher-only edits per budget
    test = cases("heldout", n, seed)
    prompts = [d for _, d, _ in test]
    student_imgs = edits(s_view, test, S, preset.student_guidance, 0)
    scores = np.array(router.score(prompts, student_imgs))
    tg = preset.teacher_guidance
    teacher_imgs = edits(t_view, test, T, tg, 0)  # regenerate: the teacher's own edit of the input
    refined = edits(t_view, test, T, tg, 0, sources=student_imgs, strength=preset.sigma)  # refine the student's
    grade = {
        "student": np.array(judge.score(prompts, student_imgs)),
        "teacher": np.array(judge.score(prompts, teacher_imgs)),
        "refine": np.array(judge.score(prompts, refined)),
    }

    def teacher_alone(steps: int) -> list[float]:
        return judge.score(prompts, edits(t_view, test, steps, tg, 0))

    rows = []
    for strategy in ("regenerate", "refine"):
        improved = grade["teacher" if strategy == "regenerate" else "refine"]
        for k in KS:
            row = matched(k, routed_below(scores, percentiles.tau(k), k), improved, grade, S, T, teacher_alone)
            rows.append({"strategy": strategy, **row})
    by_edit = {
        what: {
            "student": float(grade["student"][[w == what for *_, w in test]].mean()),
            "teacher": float(grade["teacher"][[w == what for *_, w in test]].mean()),
        }
        for what in EDITED
    }
    result = {
        "what": "shapes editing: adaptive image-to-image against the teacher's image-to-image at matched mean steps",
        "cases": n,
        "calibration_cases": n_val,
        "strength": STRENGTH,
        "student_steps": S,
        "teacher_steps": T,
        "judge": astuple(preset.judge)[0],
        "student_only": float(grade["student"].mean()),
        "teacher_full": float(grade["teacher"].mean()),
        "teacher_refine_all": float(grade["refine"].mean()),
        "by_edit": by_edit,
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return write_result(Path(out) / "editing.json", result)


def write_result(path: Path, result: dict) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result

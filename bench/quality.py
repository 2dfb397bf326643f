"""`adq bench quality`: does adaptive student->teacher collaboration beat the student alone and the teacher alone at
the same mean number of steps? Measured on held-out shapes prompts, graded by the judge that routing never sees.

Student images, teacher images at every step count, and refinements at each sigma are computed once, in batches,
with the seeds serving uses (student: seed, teacher: seed + TEACHER_SEED_OFFSET); each adaptive (k, sigma) row
then routes the images scoring below tau_k. Steps are counted by callbacks, not assumed. Wall time of a row is
its student and teacher work, from per-image times measured in this run."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from adq.core.resources import data_path
from adq.method import percentiles as cal
from adq.method.models import registry
from adq.method.models.device import generator
from adq.method.models.diffusion import TEACHER_SEED_OFFSET, StepCounter, steps_for_strength
from adq.method.presets import get_preset
from adq.method.shapes import world
from adq.method.shapes.scorers import AttributeScorer
from adq.method.stats import paired_bootstrap_ci, paired_se

PRESET = "shapes"


@dataclass
class Batch:
    images: list
    steps: np.ndarray  # per image, counted
    seconds: float  # total


@dataclass
class Row:
    mode: str
    k: int | None
    sigma: float | None
    strategy: str | None
    mean_steps: float
    teacher_fraction: float
    estimator: float
    judge: float
    judge_exact: float
    wall_s: float


def _run(pipe, prompts, seeds, device, batch: int, desc: str, **kwargs) -> Batch:
    images, steps, t0 = [], [], time.perf_counter()
    extra = kwargs.pop("images", None)
    for i in tqdm(range(0, len(prompts), batch), desc=desc, leave=False):
        counter = StepCounter()
        call = dict(
            kwargs,
            prompt=prompts[i : i + batch],
            callback_on_step_end=counter,
            output_type="pil",
            generator=[generator(device, s) for s in seeds[i : i + batch]],
        )
        if extra is not None:
            call["image"] = extra[i : i + batch]
        images += pipe(**call).images
        steps += [counter.steps] * len(call["prompt"])
    return Batch(images, np.array(steps), time.perf_counter() - t0)


def quality(
    n_prompts: int = 500,
    out_dir: Path = Path(".adq/bench-quality"),
    sigmas=(0.3, 0.5, 0.7),
    ks=tuple(range(0, 101, 10)),
    batch: int = 50,
    seed: int = 0,
) -> dict:
    preset = get_preset(PRESET)
    S, T = preset.student_steps, preset.teacher_steps
    prompts = world.prompts("heldout", n_prompts, seed=seed)
    seeds = [200_000 + i for i in range(n_prompts)]
    t_seeds = [s + TEACHER_SEED_OFFSET for s in seeds]
    est = registry.estimator(PRESET)
    judge = AttributeScorer(data_path("models", "shapes", "judge"))
    pct = cal.load(preset.percentiles_path)

    st, teach, refined = _passes(preset, prompts, seeds, t_seeds, ks, sigmas, batch)
    st_est = np.array(est.score(prompts, st.images))
    grades = {}

    def grade(key, images):
        if key not in grades:
            grades[key] = (np.array(est.score(prompts, images)), np.array(judge.accuracy(prompts, images)))
        return grades[key]

    def row(mode, k, sigma, strategy, images, steps, routed, seconds):
        e, j = grade((mode, k, sigma, strategy), images)
        return Row(
            mode,
            k,
            sigma,
            strategy,
            float(steps.mean()),
            float(routed.mean()),
            float(e.mean()),
            float(j.mean()),
            float((j == 1.0).mean()),
            seconds,
        )

    none = np.zeros(n_prompts, bool)
    rows = [row("student", None, None, None, st.images, st.steps, none, st.seconds)]
    for n, out in teach.items():
        rows.append(row(f"teacher {n} steps", None, None, None, out.images, out.steps, ~none, out.seconds))
    per_image = {"student": st.seconds / n_prompts, "regenerate": teach[T].seconds / n_prompts}
    per_image |= {s: refined[s].seconds / n_prompts for s in sigmas}
    for strategy, options in (("refine", sigmas), ("regenerate", (None,))):
        for sigma in options:
            improved = refined[sigma] if strategy == "refine" else teach[T]
            for k in ks:
                tau = pct.tau(k)
                routed = np.array([cal.below_cutoff(float(sc), tau, k) for sc in st_est])
                images = [b if r else a for a, b, r in zip(st.images, improved.images, routed)]
                steps = st.steps + np.where(routed, improved.steps, 0)
                secs = st.seconds + routed.sum() * per_image[sigma if strategy == "refine" else "regenerate"]
                rows.append(row("adaptive", k, sigma, strategy, images, steps, routed, secs))

    st_j, te_j = grade(rows[0].mode, st.images)[1], grades[(f"teacher {T} steps", None, None, None)][1]
    finding = {
        "student_better": float((st_j > te_j).mean()),
        "student_tie": float((st_j == te_j).mean()),
        "teacher_better": float((st_j < te_j).mean()),
    }
    result = {
        "n_prompts": n_prompts,
        "split": "heldout",
        "student_steps": S,
        "teacher_steps": T,
        "rows": [asdict(r) for r in rows],
        "student_vs_teacher": finding,
        "matched": matched_budget(rows, T, grades),
    }
    _write(out_dir, result, rows, n_prompts, T)
    return result


def _passes(preset, prompts, seeds, t_seeds, ks, sigmas, batch):
    """The passes every row is cut from: the student's, the teacher alone at each budget, each refinement."""
    S, T = preset.student_steps, preset.teacher_steps
    student, teacher = registry.student(PRESET), registry.teacher(PRESET)
    dev = student.device
    size = dict(width=preset.student_size[0], height=preset.student_size[1])
    st = _run(
        student.pipe,
        prompts,
        seeds,
        dev,
        batch,
        "student",
        num_inference_steps=S,
        guidance_scale=preset.student_guidance,
        **size,
    )
    budgets = sorted({max(1, round(S + T * k / 100)) for k in ks} | {T})
    teach = {
        n: _run(
            teacher.regenerator.pipe,
            prompts,
            t_seeds,
            dev,
            batch,
            f"teacher {n} steps",
            num_inference_steps=n,
            guidance_scale=preset.teacher_guidance,
            **size,
        )
        for n in budgets
    }
    refined = {
        s: _run(
            teacher.pipe,
            prompts,
            t_seeds,
            dev,
            batch,
            f"refine sigma {s}",
            images=st.images,
            strength=s,
            num_inference_steps=steps_for_strength(T, s),
            guidance_scale=preset.teacher_guidance,
        )
        for s in sigmas
    }

    return st, teach, refined


def _write(out_dir: Path, result: dict, rows: list[Row], n_prompts: int, T: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "quality.json").write_text(json.dumps(result, indent=1))
    (out_dir / "quality.md").write_text(table(rows) + "\n")
    (out_dir / "quality_vs_k.json").write_text(json.dumps(quality_by_k(rows, n_prompts), indent=1) + "\n")
    plot(rows, out_dir / "quality.png", T)


def quality_by_k(rows: list[Row], n_prompts: int) -> dict:
    """The curve the day simulator prices quality with (adq.control.simulate.quality_curve): the judge's
    accuracy of adaptive regeneration at each k."""
    curve = {str(r.k): round(r.judge, 4) for r in rows if r.mode == "adaptive" and r.strategy == "regenerate"}
    return {
        "source": f"quality.json (adq bench quality --prompts {n_prompts}): adaptive regeneration on the shapes world",
        "n_prompts": n_prompts,
        "metric": "judge attribute accuracy",
        "quality_by_k": curve,
    }


def matched_budget(rows: list[Row], T: int, grades: dict) -> list[dict]:
    """For each adaptive row, the teacher-only row with the nearest mean steps, on the judge, with the standard
    error and the 95 % paired bootstrap interval of the per-prompt difference (same prompts and seeds on both
    sides)."""
    teachers = [r for r in rows if r.mode.startswith("teacher")]
    student = rows[0]
    judge = {key: g[1] for key, g in grades.items()}
    s_key = (student.mode, None, None, None)
    out = []
    for r in rows:
        if r.mode != "adaptive":
            continue
        t = min(teachers, key=lambda x: abs(x.mean_steps - r.mean_steps))
        a = judge[(r.mode, r.k, r.sigma, r.strategy)]
        tj = judge[(t.mode, None, None, None)]
        out.append(
            {
                "k": r.k,
                "sigma": r.sigma,
                "strategy": r.strategy,
                "mean_steps": r.mean_steps,
                "adaptive_judge": r.judge,
                "teacher_steps": t.mean_steps,
                "teacher_judge": t.judge,
                "student_judge": student.judge,
                "vs_teacher": r.judge - t.judge,
                "vs_teacher_se": paired_se(a, tj),
                "vs_teacher_ci95": paired_bootstrap_ci(a, tj),
                "vs_student": r.judge - student.judge,
                "vs_student_se": paired_se(a, judge[s_key]),
                "vs_student_ci95": paired_bootstrap_ci(a, judge[s_key]),
                "beats_both": r.judge > t.judge and r.judge > student.judge,
            }
        )
    return out


def table(rows: list[Row]) -> str:
    lines = [
        "| mode | k | σ | strategy | mean steps | teacher fraction | estimator | judge (attr. acc.) | "
        "judge exact | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
    for r in rows:
        lines.append(
            f"| {r.mode} | {fmt(r.k)} | {fmt(r.sigma)} | {fmt(r.strategy)} | {r.mean_steps:.2f} | "
            f"{r.teacher_fraction:.2f} | {r.estimator:.3f} | {r.judge:.4f} | {r.judge_exact:.3f} | "
            f"{r.wall_s:.1f} |"
        )
    return "\n".join(lines)


def plot(rows: list[Row], path: Path, T: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    teachers = sorted((r for r in rows if r.mode.startswith("teacher")), key=lambda r: r.mean_steps)
    ax.plot([r.mean_steps for r in teachers], [r.judge for r in teachers], "k-o", ms=3, label="teacher only")
    ax.plot([rows[0].mean_steps], [rows[0].judge], "r*", ms=12, label="student only")
    for strategy, sigma in sorted(
        {(r.strategy, r.sigma) for r in rows if r.mode == "adaptive"}, key=lambda x: (x[0], x[1] or 0)
    ):
        pts = sorted(
            (r for r in rows if r.mode == "adaptive" and r.strategy == strategy and r.sigma == sigma),
            key=lambda r: r.mean_steps,
        )
        label = f"adaptive refine σ={sigma}" if strategy == "refine" else "adaptive regenerate"
        ax.plot([r.mean_steps for r in pts], [r.judge for r in pts], "-", marker=".", label=label)
    ax.set_xlabel("mean denoising steps per image")
    ax.set_ylabel("judge: attribute accuracy")
    ax.set_title(f"shapes world, held-out prompts (teacher T={T})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

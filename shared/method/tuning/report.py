"""`adq tune`'s outputs: the frontier with paired intervals against the teacher alone, a plot, a table, and for each
budget the recommended setting as a presets file that ADQ_PRESETS_FILE loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from adq.core.errors import InputError
from adq.core.status import Strategy
from adq.method import frontier
from adq.method import percentiles as cal
from adq.method.frontier import Point
from adq.method.presets import Preset, settings_hash, student_settings, to_entry
from adq.method.stats import paired_bootstrap_ci

SERVABLE = (Strategy.REFINE.value, Strategy.REGENERATE.value, "student")  # what a preset can express


def nearest_teacher(point: Point, teachers: list[Point]) -> Point:
    return min(teachers, key=lambda t: (abs(t.mean_steps - point.mean_steps), t.mean_steps))


def compare(point: Point, teachers: list[Point], grades: dict) -> dict:
    """The point against the teacher alone at the nearest mean steps: paired difference and its 95 % interval."""
    t = nearest_teacher(point, teachers)
    lo, hi = paired_bootstrap_ci(grades[point.setting], grades[t.setting])
    return {
        "teacher_steps": t.setting.teacher_steps,
        "teacher_quality": t.quality,
        "diff": point.quality - t.quality,
        "ci95": [lo, hi],
    }


def recommend(points: list[Point], budget: float, by: str) -> Point:
    servable = [p for p in points if p.setting.strategy in SERVABLE]
    best = frontier.best_within(servable, budget, by)
    if best is None:
        cheapest = min(p.cost(by) for p in servable)
        raise InputError(f"budget {budget:g} {by} is below the cheapest setting ({cheapest:.3g} {by}: the student)")
    return best


def preset_file(preset: Preset, point: Point, budget: float, by: str, scores: np.ndarray, out_dir: Path) -> Path:
    """The recommended setting as a user preset, with percentiles from this tune's student scores at its S."""
    s = point.setting
    name = f"{preset.name}-tuned-{budget:g}{'s' if by == 'seconds' else ''}"
    settings = student_settings(preset.name, s.student_steps, preset.student_guidance, *preset.student_size)
    settings["preset"] = name
    meta = {
        "preset": name,
        "student_settings": settings,
        "settings_hash": settings_hash(settings),
        "n_samples": len(scores),
        "estimator": preset.estimator.kind,
        "source": "adq tune",
    }  # what calibrate writes
    pct_path = cal.save(cal.from_scores(scores, meta), out_dir / f"{name}.percentiles.json")
    entry = to_entry(preset) | {"student_steps": s.student_steps, "k": s.k, "percentiles_file": _named(pct_path)}
    if s.strategy != "student":
        entry |= {"strategy": s.strategy, "teacher_steps": s.teacher_steps}
        if s.sigma is not None:
            entry["sigma"] = s.sigma
    entry["notes"] = f"adq tune: best judge score within {budget:g} {by} ({point.mean_steps:.2f} mean steps)"
    path = out_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump({name: entry}, sort_keys=False))
    return path


def table(rows: list[dict]) -> str:
    lines = [
        "| setting | mean steps | s / image | judge | teacher alone (T) | difference | 95 % interval |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["vs_teacher"]
        secs = "-" if r["seconds"] is None else f"{r['seconds']:.4f}"
        lines.append(
            f"| {r['label']} | {r['mean_steps']:.2f} | {secs} | {r['quality']:.4f} | {c['teacher_quality']:.4f} "
            f"({c['teacher_steps']}) | {c['diff']:+.4f} | {c['ci95'][0]:+.4f} … {c['ci95'][1]:+.4f} |"
        )
    return "\n".join(lines)


def plot(points: list[Point], front: list[Point], chosen: list[Point], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter([p.mean_steps for p in points], [p.quality for p in points], s=6, c="0.75", label="every setting")
    teachers = sorted((p for p in points if p.setting.strategy == "teacher"), key=lambda p: p.mean_steps)
    ax.plot([p.mean_steps for p in teachers], [p.quality for p in teachers], "k-o", ms=3, label="teacher only")
    students = [p for p in points if p.setting.strategy == "student"]
    ax.plot([p.mean_steps for p in students], [p.quality for p in students], "r*", ms=11, label="student only")
    ax.plot([p.mean_steps for p in front], [p.quality for p in front], "b-", lw=2, label="frontier")
    for p in chosen:
        ax.plot([p.mean_steps], [p.quality], "gD", ms=8)
        ax.annotate(p.setting.label, (p.mean_steps, p.quality), fontsize=7, xytext=(4, -10), textcoords="offset points")
    ax.set_xlabel("mean denoising steps per image")
    ax.set_ylabel("judge")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(preset: Preset, points, grades, students, budgets, by: str, out_dir: Path, meta: dict) -> dict:
    front = frontier.pareto(points, by)
    teachers = [p for p in points if p.setting.strategy == "teacher"]
    rows = [
        {
            "label": p.setting.label,
            "setting": p.setting.__dict__,
            "mean_steps": p.mean_steps,
            "seconds": p.seconds,
            "quality": p.quality,
            "vs_teacher": compare(p, teachers, grades),
        }
        for p in front
    ]
    chosen, recommended = [], []
    for budget in budgets:
        p = recommend(points, budget, by)
        chosen.append(p)
        s = p.setting
        path = preset_file(preset, p, budget, by, students[s.student_steps].score, out_dir)
        recommended.append(
            {
                "budget": budget,
                "by": by,
                "label": s.label,
                "setting": s.__dict__,
                "mean_steps": p.mean_steps,
                "quality": p.quality,
                "preset_file": str(path),
                "vs_teacher": compare(p, teachers, grades),
            }
        )
    result = {
        "preset": preset.name,
        **meta,
        "frontier": frontier.to_json(front),
        "frontier_rows": rows,
        "recommended": recommended,
        "points": frontier.to_json(points),
    }
    (out_dir / "frontier.json").write_text(json.dumps(result, indent=1))
    md = table(rows)
    if recommended:
        md += "\n\nRecommended:\n\n" + "\n".join(
            f"- within {r['budget']:g} {by}: {r['label']} ({r['mean_steps']:.2f} mean steps, judge "
            f"{r['quality']:.4f}); `{Path(r['preset_file']).name}`"
            for r in recommended
        )
    (out_dir / "frontier.md").write_text(md + "\n")
    plot(points, front, chosen, out_dir / "frontier.png", f"{preset.name}: {meta['n_prompts']} validation prompts")
    return result


def _named(pct_path: Path) -> str:
    """How a presets file names its percentiles: relative to the data folder's percentiles/ when it lies in that
    data folder (the committed tune in data/results stays valid wherever the checkout is), else absolute."""
    import os

    from adq.core.resources import data_dir, data_path

    resolved = pct_path.resolve()
    if resolved.is_relative_to(data_dir()):
        return os.path.relpath(resolved, data_path("percentiles"))
    return str(resolved)

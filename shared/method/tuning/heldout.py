"""`adq tune --heldout FILE`: does the tuned setting beat the preset's own at the same budget on prompts the tune
never saw? For each budget B the preset's default (its S, strategy, sigma and T, with the k that spends B:
k = (B - S) / T) and the recommended setting are graded on the held-out prompts, with the 95 % paired bootstrap
interval of the per-prompt difference. Both are routed by the held-out set's own percentiles, as a calibration on
it would route them, and share every model pass (the search of adq.method.tuning.search over just the settings
needed)."""

from __future__ import annotations

import json
from pathlib import Path

from adq.core.status import Strategy
from adq.method import percentiles as cal
from adq.method.frontier import Setting
from adq.method.presets import EstimatorSpec, get_preset
from adq.method.stats import paired_bootstrap_ci
from adq.method.tuning.search import Grid, search


def default_at(preset, budget: float) -> Setting:
    k = round(max(0.0, min(1.0, (budget - preset.student_steps) / preset.teacher_steps)) * 100)
    sigma = preset.sigma if preset.strategy == Strategy.REFINE else None
    return Setting(preset.student_steps, k, Strategy(preset.strategy).value, sigma, preset.teacher_steps)


def heldout(preset_name: str, prompts_file: str, recommended: list[dict], judge: EstimatorSpec, out_dir: Path) -> dict:
    preset = get_preset(preset_name)
    prompts = cal.read_prompts(prompts_file)
    pairs = [(r["budget"], Setting(**r["setting"]), default_at(preset, r["budget"])) for r in recommended]
    wanted = [s for _, tuned, default in pairs for s in (tuned, default)]
    adaptive = [s for s in wanted if s.strategy in (Strategy.REFINE.value, Strategy.REGENERATE.value)]
    grid = Grid(
        student_steps=tuple(sorted({s.student_steps for s in wanted})),
        teacher_steps=tuple(sorted({s.teacher_steps for s in adaptive})) or (preset.teacher_steps,),
        sigmas=tuple(sorted({s.sigma for s in adaptive if s.sigma is not None})) or (preset.sigma,),
        ks=tuple(sorted({s.k for s in wanted} | {0})),
        strategies=tuple(sorted({s.strategy for s in adaptive})) or (Strategy.REGENERATE.value,),
    )
    points, grades, ran, _students = search(preset, prompts, grid, judge, out_dir / "heldout", batch=50)
    by_setting = {p.setting: p for p in points}
    rows = []
    for budget, tuned, default in pairs:
        t, d = _find(by_setting, tuned), _find(by_setting, default)
        lo, hi = paired_bootstrap_ci(grades[t.setting], grades[d.setting])
        rows.append({"budget": budget, "tuned": t.setting.label, "tuned_steps": t.mean_steps, "tuned_judge": t.quality,
                     "default": d.setting.label, "default_steps": d.mean_steps, "default_judge": d.quality,
                     "diff": t.quality - d.quality, "ci95": [lo, hi], "wins": lo > 0})  # fmt: skip
    result = {"preset": preset.name, "prompts_file": str(prompts_file), "n_prompts": len(prompts), "rows": rows}
    (out_dir / "heldout.json").write_text(json.dumps(result, indent=1))
    lines = ["| budget | tuned | mean steps | judge | default | mean steps | judge | difference | 95 % interval |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['budget']:g} | {r['tuned']} | {r['tuned_steps']:.2f} | {r['tuned_judge']:.4f} | {r['default']} | "
            f"{r['default_steps']:.2f} | {r['default_judge']:.4f} | {r['diff']:+.4f} | "
            f"{r['ci95'][0]:+.4f} … {r['ci95'][1]:+.4f} |"
        )
    (out_dir / "heldout.md").write_text("\n".join(lines) + "\n")
    return result


def _find(by_setting: dict, setting: Setting):
    """The graded point of a setting (a student-only setting is graded once per S, whatever its other fields)."""
    if setting in by_setting:
        return by_setting[setting]
    if setting.k == 0:
        return by_setting[Setting(setting.student_steps, 0, "student", None, None)]
    raise KeyError(setting)

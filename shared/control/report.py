"""`adq simulate`'s report: a Markdown table, a plot and JSON rows, one per (scenario, scaling, control)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adq.control.simulate import CONTROLS, POLICIES, SCENARIOS, FrontierPricing, Result, quality_curve, simulate
from adq.control.sizing import PolicyConfig

JSON_KEYS = (
    "scenario scaling control gpu_hours p50 p95 p99 slo_violations teacher_fraction mean_quality jobs teacher_batch"
).split()


def batching_table(plain: list[dict], batched: list[dict], target: float) -> str:
    """GPU-hours, p95 and SLO violations of the same day with the teacher one job at a time and batched."""
    lines = [
        "| scenario | scaling | GPU-hours, one at a time | GPU-hours, batched | saved | p95 s (one / batched) | "
        f"SLO violations > {target:g} s (one / batched) |",
        "|---|---|---|---|---|---|---|",
    ]
    for a, b in zip(plain, batched):
        saved = 1 - b["gpu_hours"] / a["gpu_hours"] if a["gpu_hours"] else 0.0
        lines.append(
            f"| {a['scenario']} | {a['scaling']} | {a['gpu_hours']:.1f} | {b['gpu_hours']:.1f} | {100 * saved:.1f} % "
            f"| {a['p95']:.1f} / {b['p95']:.1f} | {100 * a['slo_violations']:.2f} % / "
            f"{100 * b['slo_violations']:.2f} % |"
        )
    return "\n".join(lines)


def table(rows: list[dict], target: float) -> str:
    lines = [
        f"| scenario | scaling | control | GPU-hours | p50 s | p95 s | p99 s | SLO violations (> {target:g} s) | "
        "teacher fraction | mean quality | teacher jobs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['scenario']} | {r['scaling']} | {r['control']} | {r['gpu_hours']:.1f} | {r['p50']:.1f} | "
        f"{r['p95']:.1f} | {r['p99']:.1f} | {100 * r['slo_violations']:.2f} % | {r['teacher_fraction']:.3f} | "
        f"{r['mean_quality']:.4f} | {r['jobs']} |"
        for r in rows
    ]
    return "\n".join(lines)


def plot(cfg: PolicyConfig, results: list[Result], path: Path, dt: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = np.arange(results[0].replicas.size) * dt / 3600
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for r in results:
        label = f"{r.scaling} / {r.control} ({r.gpu_hours:.0f} GPU-h)"
        ax1.plot(hours, r.replicas, label=label, lw=1)
        ax2.plot(hours, r.queue, label=label, lw=0.8)
    ax1.set_ylabel("teacher GPUs")
    ax1.legend(loc="upper left", fontsize=8)
    ax1.set_title(
        f"Teacher autoscaling over a day ({results[0].scenario}): peak {cfg.peak_start_hour}-{cfg.peak_end_hour} h, "
        f"k={cfg.k}, {cfg.teacher_time_s:g} s/image, p95 target {cfg.p95_latency_target_s:g} s"
    )
    ax2.set_ylabel("waiting teacher jobs")
    ax2.set_xlabel("hour of day")
    ax2.set_yscale("symlog")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def frontier_pricing(path: Path) -> FrontierPricing:
    """The simulator's prices from `adq tune`'s frontier.json: every point it measured, at the preset's own S and T."""
    from adq.method import frontier
    from adq.method.presets import get_preset

    data = json.loads(Path(path).read_text())
    preset = get_preset(data["preset"])
    return FrontierPricing(frontier.from_json(data["points"]), preset.student_steps, preset.teacher_steps)


def report(
    cfg: PolicyConfig,
    seed: int = 0,
    out_dir: Path = Path(".adq/simulate"),
    dt: float = 1.0,
    scenarios=SCENARIOS,
    policies=POLICIES,
    controls=CONTROLS,
    json_path: Path | None = None,
    frontier_file: Path | None = None,
) -> list[dict]:
    """Every (scenario, scaling, control). With a tune's frontier file, quality comes from its points for every
    control (one scale for all rows), and the slo+frontier control is added. The table and plot are named after
    the JSON file when there is one (``simulation-frontier.json`` -> ``simulation-frontier.md``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(json_path).stem if json_path is not None else "simulation"
    quality, pricing = quality_curve(), None
    if frontier_file is not None:
        pricing = frontier_pricing(frontier_file)
        controls = tuple(controls) + (() if "slo+frontier" in controls else ("slo+frontier",))
    results = [
        simulate(cfg, p, seed=seed, dt=dt, control=c, scenario=s, quality=quality, frontier=pricing)
        for s in scenarios
        for p in policies
        for c in controls
    ]
    rows = [r.row(cfg.p95_latency_target_s) for r in results]
    text = table(rows, cfg.p95_latency_target_s)
    if cfg.teacher_batch_curve and cfg.teacher_batch_max > 1 and "fixed" in controls:
        # The same days with the teacher batching (fixed control: the share does not move, so only the GPU does).
        plain = [r for r in rows if r["control"] == "fixed"]
        batched = [
            simulate(cfg, p, seed=seed, dt=dt, scenario=s, quality=quality, frontier=pricing, batched=True)
            for s in scenarios
            for p in policies
        ]
        extra = [r.row(cfg.p95_latency_target_s) for r in batched]
        rows += extra
        text += (
            f"\n\nTeacher batching: up to {cfg.teacher_batch_max} waiting jobs a replica, priced by the "
            f"{cfg.teacher_batch_curve} curve scaled to {cfg.teacher_time_s:g} s an image (control fixed).\n\n"
            + batching_table(plain, extra, cfg.p95_latency_target_s)
        )
    print(text)
    (out_dir / f"{stem}.md").write_text(text + "\n")
    shown = [
        r for r in results if r.scenario == scenarios[0] and (r.control == "fixed" or r.scaling == "schedule+queue")
    ]
    plot(cfg, shown, out_dir / f"{stem}.png", dt)
    print(f"\nplot: {out_dir / f'{stem}.png'}")
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps([{k: r[k] for k in JSON_KEYS} for r in rows], indent=1) + "\n")
    return rows

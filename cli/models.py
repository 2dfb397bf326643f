"""Commands on models and the method's settings: list and check presets, calibrate τ, tune, train the shapes world."""

from __future__ import annotations

import argparse
from pathlib import Path

from adq.core.config import get_settings
from adq.core.errors import InputError


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: comma-separated integers") from None


def _floats(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: comma-separated numbers") from None


def presets(a) -> int:
    from adq.method.presets import all_presets, load_file

    if a.check:
        for path in a.check:
            found = load_file(Path(path))  # PresetFileError (exit 2) names the file, the preset and the field
            print(f"{path}: {len(found)} valid preset(s): {', '.join(found)}")
        return 0
    for p in all_presets().values():
        lora = f" + {len(p.student.lora)} LoRA" if p.student.lora else ""
        print(
            f"{p.name:20s} student {p.student.label}{lora} ({p.student_steps} steps, guidance {p.student_guidance})"
            f" -> teacher {p.teacher.label} ({p.teacher_steps} steps, sigma {p.sigma}), k {p.k}, "
            f"estimator {p.estimator.kind}  [{p.origin}]"
        )
    return 0


CALIBRATE_OPTIONS = (
    "preset n_samples seed out batch_size student_steps student_guidance width height image strength control"
).split()


def calibrate(a) -> int:
    from adq.control.calibrate import calibrate
    from adq.jobs.db.migrate import upgrade

    upgrade() if get_settings().effective_database_url.startswith("sqlite") else None
    if a.from_json:
        from adq.control.calibrate import record_file

        if not a.preset or a.prompts:
            raise InputError("--from-json FILE records a file for --preset NAME, and takes no prompt file")
        overrides = {k: getattr(a, k) for k in ("student_steps", "student_guidance", "width", "height")}
        res = record_file(a.from_json, preset=a.preset, **overrides)
        print(f"recorded {res.path} as preset {a.preset}'s calibration (id {res.calibration_id})")
        print("  " + "  ".join(f"p{k}={res.percentiles.tau(k):.4f}" for k in range(10, 100, 10)))
        return 0
    if not a.prompts:
        raise InputError("give a prompt file to sample, or --from-json FILE to record one")
    res = calibrate(a.prompts, **{name: getattr(a, name) for name in CALIBRATE_OPTIONS})
    p = res.percentiles
    print(f"wrote {res.path} (calibration id {res.calibration_id}, settings {p.meta['settings_hash']})")
    print("  " + "  ".join(f"p{k}={p.values[k]:.4f}" for k in range(10, 100, 10)))
    return 0


def tune(a) -> int:
    """`adq tune`: search, write the frontier and presets files, and with --record keep the frontier for the
    control policies (the database: tuning itself is part of the method library, which knows no database)."""
    from adq.method import frontier
    from adq.method.presets import get_preset
    from adq.method.tuning.search import Grid, run

    if a.budget and a.budget_seconds:
        raise InputError("give --budget (mean steps) or --budget-seconds, not both")
    preset = get_preset(a.preset)
    defaults = Grid(student_steps=(preset.student_steps,))
    grid = Grid(
        student_steps=a.student_steps or defaults.student_steps,
        teacher_steps=a.teacher_steps or defaults.teacher_steps,
        sigmas=a.sigmas or defaults.sigmas,
        ks=a.ks or defaults.ks,
        strategies=a.strategies or defaults.strategies,
    )
    if a.record:
        from adq.jobs.db.migrate import upgrade

        upgrade()  # the frontiers table; a server database is migrated by its operator, so this is a no-op there
    by = "seconds" if a.budget_seconds else "steps"
    budgets = tuple(a.budget_seconds or a.budget)
    res = run(
        a.preset,
        a.prompts,
        budgets=budgets,
        by=by,
        judge=a.judge,
        out_dir=Path(a.out),
        grid=grid,
        batch=a.batch_size,
        limit=a.limit,
        heldout_file=a.heldout,
    )
    print(
        f"{len(res['points'])} settings from {len(res['passes_run'])} passes run now "
        f"({res['search_s']:.0f} s); frontier of {len(res['frontier'])} in {a.out}/frontier.md"
    )
    for r in res["recommended"]:
        print(f"within {r['budget']:g} {by}: {r['label']} (judge {r['quality']:.4f}) -> {r['preset_file']}")
    for r in res.get("heldout", {}).get("rows", []):
        print(
            f"held out, {r['budget']:g}: tuned {r['tuned_judge']:.4f} vs default {r['default_judge']:.4f}, "
            f"{r['diff']:+.4f} [{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]"
        )
    if a.record:
        from adq.jobs.db import frontiers

        best = frontier.pareto(frontier.from_json(res["points"]), by)
        print(f"recorded as preset {a.preset}'s frontier (id {frontiers.record(a.preset, best, source=a.out)})")
    return 0


def train_shapes(a) -> int:
    import torch

    from adq.method.shapes.training import train_all

    if a.threads:
        torch.set_num_threads(a.threads)
    timings = train_all(Path(a.out), seed=a.seed, scale=a.scale)
    print("trained in " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    return 0


def train_shapes_controlnet(a) -> int:
    import json

    from adq.method.shapes.controlnet import train

    print(json.dumps(train(minutes=a.minutes, seed=a.seed)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("presets", help="list model presets and where each comes from (ADQ_PRESETS_FILE)")
    p.add_argument("--check", nargs="+", metavar="FILE", help="validate presets files without starting anything")
    p.set_defaults(fn=presets)

    p = sub.add_parser("calibrate", help="tabulate the student's score percentiles under serving settings")
    p.add_argument("prompts", nargs="?", help="CSV with a caption column, or one prompt per line")
    p.add_argument("--preset")
    p.add_argument(
        "--from-json",
        metavar="FILE",
        help="record a percentiles file made elsewhere (calc_score_percentiles, the reference's) as --preset's",
    )
    p.add_argument("--n", dest="n_samples", type=int, help="number of samples (default: one per prompt)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON path (default: <ADQ_HOME>/calibrations/<preset>-<hash>.json)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--student-steps", type=int)
    p.add_argument("--guidance", dest="student_guidance", type=float)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--image", help="image-to-image mode: an input image, or a folder of them (cycled)")
    p.add_argument("--strength", type=float, help="image-to-image strength (default: the preset's)")
    p.add_argument("--control", help="ControlNet mode: a control image, or a folder of them (cycled)")
    p.set_defaults(fn=calibrate)

    p = sub.add_parser("tune", help="search k, sigma, teacher steps and strategy for the best judge score per budget")
    p.add_argument("prompts", help="validation prompts: CSV with a caption column, or one prompt per line")
    p.add_argument("--preset", required=True)
    p.add_argument("--budget", type=float, action="append", default=[], help="mean steps per image (repeatable)")
    p.add_argument(
        "--budget-seconds", type=float, action="append", default=[], help="measured seconds per image (repeatable)"
    )
    p.add_argument("--judge", help="estimator kind or module:callable that grades (default: the preset's judge)")
    p.add_argument("--out", default=".adq/tune", help="folder for the frontier, plot, table, presets and cache")
    p.add_argument("--student-steps", type=_ints, help="comma-separated (default: the preset's)")
    p.add_argument("--teacher-steps", type=_ints, help="comma-separated (default: 4,8,12,16,20)")
    p.add_argument("--sigmas", type=_floats, help="comma-separated rollbacks for refinement (default: 0.3,0.5,0.7)")
    p.add_argument("--ks", type=_ints, help="comma-separated teacher shares (default: 0,10,...,100)")
    p.add_argument("--strategies", type=lambda v: tuple(v.split(",")), help="regenerate,refine (default: both)")
    p.add_argument("--limit", type=int, help="use only the first N prompts")
    p.add_argument("--heldout", metavar="FILE", help="grade each recommendation against the preset's own setting here")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--record", action="store_true", help="record the frontier for the preset: control policies use it")
    p.set_defaults(fn=tune)

    p = sub.add_parser("train-shapes", help="train the shapes world's teacher, student, estimator and judge")
    p.add_argument("--out", default="data/models/shapes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every step count")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(fn=train_shapes)

    p = sub.add_parser(
        "train-shapes-controlnet", help="train a mask ControlNet for the shapes teacher (wall-clock budget)"
    )
    p.add_argument("--minutes", type=float, default=25.0, help="stop training after this much wall clock")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=train_shapes_controlnet)

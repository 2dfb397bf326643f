"""`adq bench …`: the benchmarks. They live in the repository's bench/ folder beside the package, as arq keeps
its benchmarks, so a wheel does not carry them: run them from a checkout."""

from __future__ import annotations

import sys
from pathlib import Path

from adq.core.errors import InputError


def _checkout() -> None:
    """Make the checkout's bench/ importable: `adq` is a console script, so the checkout is not on sys.path."""
    try:
        import bench  # noqa: F401  (python -m adq.cli from the checkout, or the tests)
    except ImportError:
        import adq

        root = Path(adq.__file__).resolve().parent.parent  # shared/.. in a checkout (an editable install)
        if not (root / "bench" / "__init__.py").is_file():
            raise InputError(
                "adq bench runs from a source checkout: the bench/ folder is not part of the installed package"
            ) from None
        sys.path.insert(0, str(root))


def bench(a) -> int:
    _checkout()
    from bench.overhead import overhead

    overhead(n_jobs=a.jobs, out=a.json, rabbitmq=a.rabbitmq)
    return 0


def bench_residency(a) -> int:
    _checkout()
    from bench.residency import run

    if a.jobs < 10:
        raise InputError(f"--jobs={a.jobs}: the stream needs at least 10 jobs")
    run(jobs=a.jobs, seed=a.seed, out=a.json, plot_to=a.plot)
    return 0


def bench_sharing(a) -> int:
    _checkout()
    from bench.overhead import write_json
    from bench.sharing import measure, report

    rows = measure()
    print(report(rows))
    write_json(a.json, {"rows": rows})
    return 0


def bench_quality(a) -> int:
    _checkout()
    import json as _json

    from bench.quality import quality

    res = quality(n_prompts=a.prompts, out_dir=Path(a.out_dir), batch=a.batch)
    print((Path(a.out_dir) / "quality.md").read_text())
    f = res["student_vs_teacher"]
    print(
        f"judge prefers the student's image on {100 * f['student_better']:.1f} % of prompts, ties "
        f"{100 * f['student_tie']:.1f} %, prefers the teacher's (T={res['teacher_steps']}) on "
        f"{100 * f['teacher_better']:.1f} %"
    )
    wins = [m for m in res["matched"] if m["beats_both"]]
    print(
        f"adaptive rows beating both the student and the nearest-budget teacher on the judge: "
        f"{len(wins)} of {len(res['matched'])}"
    )
    for m in wins:
        (tl, th), (sl, sh) = m["vs_teacher_ci95"], m["vs_student_ci95"]
        print(
            f"  k={m['k']} {m['strategy']} sigma={m['sigma']}: {m['mean_steps']:.2f} steps, vs teacher "
            f"{m['teacher_steps']:.0f} steps {m['vs_teacher']:+.4f} (95% CI {tl:+.4f}..{th:+.4f}), vs student "
            f"{m['vs_student']:+.4f} (95% CI {sl:+.4f}..{sh:+.4f})"
        )
    settled = [m for m in res["matched"] if m["vs_teacher_ci95"][0] > 0 and m["vs_student_ci95"][0] > 0]
    print(f"adaptive rows whose 95% intervals exclude zero against both: {len(settled)} of {len(res['matched'])}")
    if a.json:
        Path(a.json).write_text(_json.dumps(res, indent=1))
    print(f"table, plot and JSON in {a.out_dir}")
    return 0


def bench_efficiency(a) -> int:
    _checkout()
    from bench.efficiency import run

    run(a.student_ms, a.student_side, a.teacher_ms, a.teacher_side, a.student_jobs, a.teacher_jobs, out=a.json)
    return 0


def bench_batching(a) -> int:
    _checkout()
    from bench.batching import run

    run(a.curve, batch=a.batch, n_jobs=a.jobs, side=a.side, out=a.json)
    return 0


def bench_realsize(a) -> int:
    _checkout()
    from bench.realsize import run

    run(out=a.json, side=a.side, families=tuple(a.family or ("sd15", "sdxl")))
    return 0


def bench_gpu(a) -> int:
    _checkout()
    from bench.gpu import run

    families = tuple(a.family or ())
    run(a.device, families, tuple(a.side), tuple(a.batch or ()), budget_s=a.budget, out=a.json)
    return 0


def bench_metrics(a) -> int:
    _checkout()
    from bench.metrics import run

    run(tuple(a.rows), scrapes=a.scrapes, out=a.json)
    return 0


def bench_control(a) -> int:
    _checkout()
    from bench.control import run

    run(a.json, rate=a.rate, seconds=a.seconds, teacher_ms=a.teacher_ms, target_s=a.target, drift_jobs=a.drift_jobs)
    return 0


def bench_editing(a) -> int:
    _checkout()
    import json

    from bench.editing import run

    result = run(n=a.cases, n_val=a.calibration_cases, out=a.out)
    print(json.dumps(result["rows"], indent=1))
    return 0


def bench_control_net(a) -> int:
    _checkout()
    import json

    from bench.controlnet import measure

    print(json.dumps(measure(n=a.scenes, n_val=a.calibration_scenes, out=a.out)["rows"], indent=1))
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="bench")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    b = bsub.add_parser("overhead", help="jobs/s through the system vs raw Celery no-op tasks/s")
    b.add_argument("--jobs", type=int, default=300)
    b.add_argument("--json", help="also write the figures to this file")
    b.add_argument("--rabbitmq", default="", metavar="URL", help="also measure on this RabbitMQ (amqp://…)")
    b.set_defaults(fn=bench)
    b = bsub.add_parser("control", help="live tau and the slo controller on the real system (Redis, PostgreSQL)")
    b.add_argument("--rate", type=float, default=14.0, help="jobs/s of the load step")
    b.add_argument("--seconds", type=float, default=20.0, help="length of the load step")
    b.add_argument("--teacher-ms", type=float, default=200.0, help="fixed cost of one teacher image")
    b.add_argument("--target", type=float, default=2.0, help="teacher p95 target of the slo policy, seconds")
    b.add_argument("--drift-jobs", type=int, default=300)
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=bench_control)
    b = bsub.add_parser(
        "efficiency", help="the model's share of worker wall time, serial vs overlapped (Redis, PostgreSQL, S3)"
    )
    b.add_argument("--student-ms", type=float, default=50.0, help="fixed cost of one student image")
    b.add_argument("--student-side", type=int, default=512, help="side of the student's textured images")
    b.add_argument("--teacher-ms", type=float, default=200.0, help="fixed cost of one teacher image")
    b.add_argument("--teacher-side", type=int, default=1024, help="side of the teacher's textured images")
    b.add_argument("--student-jobs", type=int, default=240)
    b.add_argument("--teacher-jobs", type=int, default=60)
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=bench_efficiency)
    b = bsub.add_parser(
        "batching", help="student jobs/s one image a call vs batched, on a GPU cost curve (Redis, PostgreSQL)"
    )
    b.add_argument("--curve", default="sd-turbo-512", help="a shipped batch curve (data/batch_curves.json)")
    b.add_argument("--batch", type=int, default=8, help="most images in one student call")
    b.add_argument("--jobs", type=int, default=400, help="jobs per run")
    b.add_argument("--side", type=int, default=64, help="side of the student's textured images")
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=bench_batching)
    b = bsub.add_parser("realsize", help="SD1.5, SDXL and FLUX at real size, random weights: bytes, a step, sharing")
    b.add_argument("--side", type=int, default=512, help="image side of the timed UNet step")
    b.add_argument("--family", action="append", choices=["sd15", "sdxl"], help="time only these UNets (repeatable)")
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=bench_realsize)
    b = bsub.add_parser("gpu", help="images/s and peak memory of the real-size twins per batch and precision (GPU)")
    b.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke run")
    b.add_argument("--family", action="append", choices=["sd15", "sdxl", "flux"], help="only these (repeatable)")
    b.add_argument("--side", type=int, nargs="+", default=[512, 1024], help="image sides")
    b.add_argument("--batch", type=int, action="append", help="only these batch sizes (repeatable)")
    b.add_argument("--budget", type=float, default=540.0, help="seconds before the sweep stops and keeps what it has")
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=bench_gpu)
    b = bsub.add_parser("metrics", help="one /metrics scrape's cost as the jobs table grows (Redis, PostgreSQL)")
    b.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="table sizes, increasing")
    b.add_argument("--scrapes", type=int, default=20, help="timed scrapes per size (the median is reported)")
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=bench_metrics)
    b = bsub.add_parser("residency", help="a model memory budget with LRU eviction, warm routing, warm-up (tiny twins)")
    b.add_argument("--jobs", type=int, default=60, help="jobs in the shuffled stream across five families")
    b.add_argument("--seed", type=int, default=5, help="the shuffle's seed")
    b.add_argument("--json", help="also write the figures to this file")
    b.add_argument("--plot", help="also plot resident bytes per job to this PNG")
    b.set_defaults(fn=bench_residency)
    b = bsub.add_parser("sharing", help="weights held when roles share one base vs separate copies (tiny twins)")
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=bench_sharing)
    b = bsub.add_parser("editing", help="adaptive image-to-image vs the teacher's at matched steps (shapes, judge)")
    b.add_argument("--cases", type=int, default=300, help="held-out edits graded")
    b.add_argument("--calibration-cases", type=int, default=150, help="validation edits that set tau")
    b.add_argument("--out", default="data/results", help="folder for editing.json")
    b.set_defaults(fn=bench_editing)
    b = bsub.add_parser("controlnet", help="adaptive ControlNet generation vs the teacher's at matched steps (shapes)")
    b.add_argument("--scenes", type=int, default=300, help="held-out scenes graded")
    b.add_argument("--calibration-scenes", type=int, default=150, help="validation scenes that set tau")
    b.add_argument("--out", default="data/results", help="folder for control.json")
    b.set_defaults(fn=bench_control_net)
    b = bsub.add_parser("quality", help="adaptive vs student vs teacher on held-out shapes prompts (judge)")
    b.add_argument("--prompts", type=int, default=500)
    b.add_argument("--batch", type=int, default=50)
    b.add_argument("--json", help="also write the results to this file")
    b.add_argument("--out-dir", default=".adq/bench-quality")
    b.set_defaults(fn=bench_quality)

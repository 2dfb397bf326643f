"""The command handlers behind `adq COMMAND`: each takes the parsed arguments and returns an exit code.

They start and drive processes (workers, the gateway, Flower) or call the library; argument parsing lives in
workers.cli, and the job commands (submit, watch, jobs, ...) in workers.job_commands."""

from __future__ import annotations

import sys
from pathlib import Path

from shared.core.config import get_settings
from shared.core.errors import InputError


def _migrate(a) -> int:
    from shared.jobs.db.migrate import current, upgrade

    upgrade()
    print(f"database at revision {current()}")
    return 0


CALIBRATE_OPTIONS = (
    "preset n_samples seed out batch_size student_steps student_guidance width height image strength control"
).split()


def _calibrate(a) -> int:
    from shared.jobs.db.migrate import upgrade
    from workers.calibrate import calibrate

    upgrade() if get_settings().effective_database_url.startswith("sqlite") else None
    if a.from_json:
        from workers.calibrate import record_file

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


def _worker(a) -> int:
    from workers.launch import run

    run(
        a.pool,
        pipeline=a.pipeline,
        concurrency=a.concurrency,
        loglevel=a.loglevel,
        hostname=a.hostname,
        queues=a.queues,
    )
    return 0


def _alive(a) -> int:
    from tasks.liveness import age_s

    age = age_s(a.pool)
    if age is None or age > a.max_age:
        state = "never" if age is None else f"{age:.0f} s ago"
        print(f"the {a.pool} worker is not consuming: last marked {state} (limit {a.max_age:g} s)", file=sys.stderr)
        return 1
    print(f"the {a.pool} worker is consuming (marked {age:.0f} s ago)")
    return 0


def _sweep(a) -> int:
    from tasks.sweeper import sweep_forever, sweep_once

    if a.loop:
        sweep_forever(a.interval, a.older_than)
    print(f"re-sent {sweep_once(a.older_than)} job(s)")
    return 0


def _demo(a) -> int:
    from workers.demo import run_demo

    jobs = run_demo(Path(a.prompts) if a.prompts else None, k=a.k, preset=a.preset)
    return 0 if jobs and all(j.status == "succeeded" for j in jobs) else 1


def _bench(a) -> int:
    from workers.bench import overhead

    overhead(n_jobs=a.jobs, out=a.json)
    return 0


def _bench_sharing(a) -> int:
    from workers.bench import write_json
    from workers.bench_sharing import measure, report

    rows = measure()
    print(report(rows))
    write_json(a.json, {"rows": rows})
    return 0


def _bench_quality(a) -> int:
    import json as _json

    from workers.shapes_bench import quality

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


def check_api_exposure(host: str, insecure: bool) -> None:
    """With no API keys the gateway serves anyone who can reach it: only on loopback, unless told that is meant."""
    import ipaddress

    from gateway.auth import parse_keys

    # The auth's own parser: "," or a placeholder key is refused here, not read as "keys are set".
    if parse_keys(get_settings().api_keys) or insecure or get_settings().api_insecure:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        loopback = False
    if not loopback:
        raise InputError(
            f"--host {host} is not a loopback address and ADQ_API_KEYS is empty, so anyone who can reach it could "
            "submit jobs: set ADQ_API_KEYS, or pass --insecure (or set ADQ_API_INSECURE=true) if an "
            "unauthenticated gateway is what you mean"
        )


def _up(a) -> int:
    from workers.up import run

    return run(port=a.port)


def _api(a) -> int:
    from gateway.app import create_app
    from gateway.server import serve

    check_api_exposure(a.host, a.insecure)
    serve(create_app(), a.host, a.port, log_level="info" if a.verbose else "warning")
    return 0


def _flower(a) -> int:
    if not get_settings().flower_password:
        raise InputError(
            "set ADQ_FLOWER_PASSWORD (and optionally ADQ_FLOWER_USER): Flower is never served without basic auth"
        )
    import os

    from tasks import app

    # Flower reads FLOWER_* from the environment: the password never appears in an argument list.
    os.environ["FLOWER_BASIC_AUTH"] = f"{get_settings().flower_user}:{get_settings().flower_password}"
    app.start(["flower", f"--address={a.address}", f"--port={a.port}"])
    return 0


def _init_storage(a) -> int:
    """Create the S3 bucket (or the storage folder) if missing; waits for the store to come up."""
    import time

    from shared.core.errors import StorageUnavailable
    from shared.jobs.storage import S3Storage, get_storage

    store, deadline = get_storage(), time.monotonic() + a.wait
    while True:
        try:
            store.ensure_bucket() if isinstance(store, S3Storage) else store.check()
            print(f"storage ready: {store.url}")
            return 0
        except StorageUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def _autoscale(a) -> int:
    from shared.control.sizing import PolicyConfig, keda_numbers
    from workers.autoscale_render import write

    cfg = PolicyConfig.load(a.config)
    if a.action == "render":
        print(f"wrote {write(Path(a.out), cfg)}")
    else:
        for name, value in vars(keda_numbers(cfg)).items():
            print(f"{name}: {value}")
    return 0


def _simulate(a) -> int:
    from shared.control.simulate import CONTROLS, POLICIES, SCENARIOS
    from shared.control.sizing import PolicyConfig
    from workers.autoscale_report import report

    report(
        PolicyConfig.load(a.config),
        seed=a.seed,
        out_dir=Path(a.out_dir),
        dt=a.dt,
        scenarios=a.scenario or SCENARIOS,
        policies=a.scaling or POLICIES,
        controls=a.control or CONTROLS,
        json_path=Path(a.json) if a.json else None,
        frontier_file=Path(a.frontier) if a.frontier else None,
    )
    return 0


def _train_shapes(a) -> int:
    import torch

    from workers.shapes_train import train_all

    if a.threads:
        torch.set_num_threads(a.threads)
    timings = train_all(Path(a.out), seed=a.seed, scale=a.scale)
    print("trained in " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    return 0


def _presets(a) -> int:
    from shared.method.presets import all_presets, load_file

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


def _controller(a) -> int:
    from tasks.controller import run

    run(interval_s=a.interval)
    return 0


def _bench_efficiency(a) -> int:
    from workers.bench_efficiency import run

    run(a.student_ms, a.student_side, a.teacher_ms, a.teacher_side, a.student_jobs, a.teacher_jobs, out=a.json)
    return 0


def _bench_metrics(a) -> int:
    from workers.bench_metrics import run

    run(tuple(a.rows), scrapes=a.scrapes, out=a.json)
    return 0


def _bench_control(a) -> int:
    from workers.bench_control import run

    run(a.json, rate=a.rate, seconds=a.seconds, teacher_ms=a.teacher_ms, target_s=a.target, drift_jobs=a.drift_jobs)
    return 0

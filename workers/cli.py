"""`adq`: submit and inspect jobs, run workers, calibrate, migrate, demo and benchmark."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from shared.config import get_settings
from shared.errors import AdqError, InputError


def _submit(a) -> int:
    from shared.schema import JobOptions
    from tasks import client

    options = {name: getattr(a, name) for name in JobOptions.model_fields}
    view = client.submit(a.prompt, idempotency_key=a.idempotency_key, **options)
    if a.wait:
        view = client.wait(view.id, timeout=a.timeout)
    _show(view, a.json)
    return 0 if view.status != "failed" else 1


def add_job_options(p: argparse.ArgumentParser) -> None:
    """One flag per settable job parameter, generated from the schema (its type, choices and description)."""
    import enum
    import typing

    from shared.schema import JobOptions

    for name, field in JobOptions.model_fields.items():
        kind = next(t for t in typing.get_args(field.annotation) if t is not type(None))
        flag = "--" + name.replace("_", "-")
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            p.add_argument(flag, choices=[m.value for m in kind], help=field.description)
        else:
            p.add_argument(flag, type=kind, help=field.description)


def _show(view, as_json: bool) -> None:
    if as_json:
        print(json.dumps(view.to_json(), default=str))
        return
    print(f"{view.id}  {view.status.value}")
    for name in ("prompt", "preset", "k", "sigma", "strategy", "student_score", "threshold", "teacher_used",
                 "total_steps", "final_image_key", "error"):
        value = getattr(view, name)
        if value is not None:
            print(f"  {name}: {getattr(value, 'value', value)}")


def _status(a) -> int:
    from shared import client

    _show(client.get(a.job_id), a.json)
    return 0


def _result(a) -> int:
    from shared import client

    data = client.image_bytes(a.job_id, "student" if a.student else "final")
    Path(a.output).write_bytes(data)
    print(f"wrote {len(data)} bytes to {a.output}")
    return 0


def _cancel(a) -> int:
    from shared import client

    _show(client.cancel(a.job_id), a.json)
    return 0


def _retry(a) -> int:
    from tasks import client

    _show(client.retry(a.job_id), a.json)
    return 0


def _migrate(a) -> int:
    from shared.db.migrate import current, upgrade

    upgrade()
    print(f"database at revision {current()}")
    return 0


def _calibrate(a) -> int:
    from shared.calibrate import calibrate
    from shared.db.migrate import upgrade

    upgrade() if get_settings().effective_database_url.startswith("sqlite") else None
    res = calibrate(a.prompts, preset=a.preset, n_samples=a.n, seed=a.seed, out=a.out, batch_size=a.batch_size,
                    student_steps=a.student_steps, student_guidance=a.guidance, width=a.width, height=a.height)
    p = res.percentiles
    print(f"wrote {res.path} (calibration id {res.calibration_id}, settings {p.meta['settings_hash']})")
    print("  " + "  ".join(f"p{k}={p.values[k]:.4f}" for k in range(10, 100, 10)))
    return 0


def _worker(a) -> int:
    from workers.launch import run

    run(a.pool, concurrency=a.concurrency, loglevel=a.loglevel, hostname=a.hostname, queues=a.queues)
    return 0


def _sweep(a) -> int:
    from tasks.sweeper import sweep_forever, sweep_once

    if a.loop:
        sweep_forever(a.interval)
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


def _bench_quality(a) -> int:
    import json as _json

    from shared.shapes.bench import quality

    res = quality(n_prompts=a.prompts, out_dir=Path(a.out_dir), batch=a.batch)
    print((Path(a.out_dir) / "quality.md").read_text())
    f = res["student_vs_teacher"]
    print(f"judge prefers the student's image on {100 * f['student_better']:.1f} % of prompts, ties "
          f"{100 * f['student_tie']:.1f} %, prefers the teacher's (T={res['teacher_steps']}) on "
          f"{100 * f['teacher_better']:.1f} %")
    wins = [m for m in res["matched"] if m["beats_both"]]
    print(f"adaptive rows beating both the student and the nearest-budget teacher on the judge: "
          f"{len(wins)} of {len(res['matched'])}")
    for m in wins:
        print(f"  k={m['k']} {m['strategy']} sigma={m['sigma']}: {m['mean_steps']:.2f} steps, vs teacher "
              f"{m['teacher_steps']:.0f} steps {m['vs_teacher']:+.4f} (SE {m['vs_teacher_se']:.4f}), vs student "
              f"{m['vs_student']:+.4f} (SE {m['vs_student_se']:.4f})")
    if a.json:
        Path(a.json).write_text(_json.dumps(res, indent=1))
    print(f"table, plot and JSON in {a.out_dir}")
    return 0


def _api(a) -> int:
    import uvicorn

    from gateway.app import create_app

    uvicorn.run(create_app(), host=a.host, port=a.port, log_level="info" if a.verbose else "warning",
                proxy_headers=True)
    return 0


def _flower(a) -> int:
    if not get_settings().flower_password:
        raise InputError("set ADQ_FLOWER_PASSWORD (and optionally ADQ_FLOWER_USER): Flower is never served without "
                         "basic auth")
    from tasks import app

    app.start(["flower", f"--address={a.address}", f"--port={a.port}",
               f"--basic-auth={get_settings().flower_user}:{get_settings().flower_password}"])
    return 0


def _init_storage(a) -> int:
    """Create the S3 bucket (or the storage folder) if missing; waits for the store to come up."""
    import time

    from shared.errors import StorageUnavailable
    from shared.storage import S3Storage, get_storage

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
    from shared.autoscale.policy import PolicyConfig, keda_numbers
    from shared.autoscale.render import write

    if a.action == "render":
        print(f"wrote {write()}")
    else:
        for name, value in vars(keda_numbers(PolicyConfig.load(a.config))).items():
            print(f"{name}: {value}")
    return 0


def _simulate(a) -> int:
    from shared.autoscale.policy import PolicyConfig
    from shared.autoscale.simulate import report

    report(PolicyConfig.load(a.config), seed=a.seed, out_dir=Path(a.out_dir), dt=a.dt)
    return 0


def _train_shapes(a) -> int:
    import torch

    from shared.shapes.train import train_all

    if a.threads:
        torch.set_num_threads(a.threads)
    timings = train_all(Path(a.out), seed=a.seed, scale=a.scale)
    print("trained in " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    return 0


def _presets(a) -> int:
    from shared.presets import PRESETS

    for p in PRESETS.values():
        print(f"{p.name:11s} student {p.student.label} ({p.student_steps} steps, guidance {p.student_guidance}) -> "
              f"teacher {p.teacher.label} ({p.teacher_steps} steps, sigma {p.sigma}), k {p.k}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from workers.demo import DEMO_PROMPTS

    ap = argparse.ArgumentParser(prog="adq", description=__doc__)
    ap.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("submit", help="enqueue a text-to-image job")
    p.add_argument("prompt")
    add_job_options(p)
    p.add_argument("--idempotency-key")
    p.add_argument("--wait", action="store_true", help="wait until the job finishes")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=_submit)

    for name, fn, helptext in (("status", _status, "show a job"), ("cancel", _cancel, "cancel an unfinished job"),
                               ("retry", _retry, "restart a failed job at the stage that failed, fresh budgets")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("job_id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(fn=fn)

    p = sub.add_parser("result", help="download a job's image")
    p.add_argument("job_id")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--student", action="store_true", help="the student image instead of the final one")
    p.set_defaults(fn=_result)

    sub.add_parser("migrate", help="bring the database to the newest schema").set_defaults(fn=_migrate)
    sub.add_parser("presets", help="list model presets").set_defaults(fn=_presets)
    p = sub.add_parser("init-storage", help="create the S3 bucket or storage folder if missing")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the store to come up")
    p.set_defaults(fn=_init_storage)

    p = sub.add_parser("calibrate", help="tabulate the student's score percentiles under serving settings")
    p.add_argument("prompts", help="CSV with a caption column, or one prompt per line")
    p.add_argument("--preset")
    p.add_argument("--n", type=int, help="number of samples (default: one per prompt)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON path (default: <ADQ_HOME>/calibrations/<preset>-<hash>.json)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--student-steps", type=int)
    p.add_argument("--guidance", type=float)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.set_defaults(fn=_calibrate)

    p = sub.add_parser("worker", help="run a worker pool bound to its queue")
    p.add_argument("pool", choices=["student", "teacher", "webhooks"])
    p.add_argument("--concurrency", type=int, default=1, help="pool processes (one per GPU)")
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--hostname", help="Celery node name (default <pool>@%%h)")
    p.add_argument("--queues", help=argparse.SUPPRESS)
    p.set_defaults(fn=_worker)

    p = sub.add_parser("api", help="serve the HTTP gateway")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(fn=_api)

    p = sub.add_parser("flower", help="serve Flower (basic auth from ADQ_FLOWER_USER/ADQ_FLOWER_PASSWORD)")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5555)
    p.set_defaults(fn=_flower)

    from shared.autoscale.policy import DEFAULT_FILE

    p = sub.add_parser("autoscale", help="teacher autoscaling numbers; `render` rewrites infra/k8s/keda.yaml")
    p.add_argument("action", choices=["show", "render"])
    p.add_argument("--config", default=str(DEFAULT_FILE))
    p.set_defaults(fn=_autoscale)

    p = sub.add_parser("simulate", help="simulate a day of load against three teacher scaling policies")
    p.add_argument("--config", default=str(DEFAULT_FILE))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dt", type=float, default=1.0, help="time step in seconds")
    p.add_argument("--out-dir", default=".adq/simulate")
    p.set_defaults(fn=_simulate)

    p = sub.add_parser("train-shapes", help="train the shapes world's teacher, student, estimator and judge")
    p.add_argument("--out", default="data/models/shapes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every step count")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(fn=_train_shapes)

    p = sub.add_parser("sweep", help="re-send jobs whose message may be lost")
    p.add_argument("--older-than", type=float, help="seconds (default ADQ_SWEEP_AFTER_S)")
    p.add_argument("--loop", action="store_true")
    p.add_argument("--interval", type=float, default=60.0)
    p.set_defaults(fn=_sweep)

    p = sub.add_parser("demo", help="run the system on embedded defaults: workers, jobs, table, gallery")
    p.add_argument("--prompts", help=f"prompt file (default: the preset's, else {DEMO_PROMPTS.name})")
    p.add_argument("--preset", default="shapes", help="preset to demo (default: shapes, the trained one)")
    p.add_argument("--k", type=int)
    p.set_defaults(fn=_demo)

    p = sub.add_parser("bench", help="benchmarks")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    b = bsub.add_parser("overhead", help="jobs/s through the system vs raw Celery no-op tasks/s")
    b.add_argument("--jobs", type=int, default=300)
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=_bench)
    b = bsub.add_parser("quality", help="adaptive vs student vs teacher on held-out shapes prompts (judge)")
    b.add_argument("--prompts", type=int, default=500)
    b.add_argument("--batch", type=int, default=50)
    b.add_argument("--json", help="also write the results to this file")
    b.add_argument("--out-dir", default=".adq/bench-quality")
    b.set_defaults(fn=_bench_quality)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kombu warns that filesystem:// names no host; that is how the embedded broker is spelled.
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    try:
        return args.fn(args)
    except InputError as exc:
        print(f"adq: error: {exc}", file=sys.stderr)
        return 2
    except AdqError as exc:
        print(f"adq: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except TimeoutError as exc:
        print(f"adq: timeout: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

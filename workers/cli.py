"""`adq`: submit and inspect jobs, run workers, calibrate, migrate, demo and benchmark."""

from __future__ import annotations

import argparse
import logging
import sys

from shared.core.errors import AdqError, InputError
from shared.jobs.priority import PRIORITIES
from workers.commands import (
    _alive,
    _api,
    _autoscale,
    _bench,
    _bench_control,
    _bench_efficiency,
    _bench_metrics,
    _bench_quality,
    _bench_sharing,
    _calibrate,
    _controller,
    _demo,
    _flower,
    _init_storage,
    _migrate,
    _presets,
    _simulate,
    _sweep,
    _train_shapes,
    _up,
    _worker,
)
from workers.job_commands import _cancel, _jobs, _prune, _result, _retry, _status, _submit, _watch


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


def _webhook_secret(a) -> int:
    from shared.core.config import get_settings
    from shared.jobs.webhooks import secret_for

    if not get_settings().webhook_secret:
        raise InputError("ADQ_WEBHOOK_SECRET is not set: webhooks are off, and there is nothing to derive from")
    print(secret_for(a.name))
    return 0


def _api_key(a) -> int:
    from gateway.auth import new_key

    key, entry = new_key(a.name)
    print(f"key (give it to the client; it is not stored anywhere): {key}")
    print(f"ADQ_API_KEYS entry (what the gateway keeps): {entry}")
    if a.webhook_secret:
        from shared.core.config import get_settings
        from shared.jobs.webhooks import secret_for

        if not get_settings().webhook_secret:
            raise InputError("ADQ_WEBHOOK_SECRET is not set: webhooks are off, and there is nothing to derive from")
        print(f"webhook secret (the receiver verifies with it): {secret_for(a.name)}")
    return 0


def _train_shapes_controlnet(a) -> int:
    import json

    from workers.shapes_controlnet import train

    print(json.dumps(train(minutes=a.minutes, seed=a.seed)))
    return 0


def _bench_control_net(a) -> int:
    import json

    from workers.shapes_controlnet import measure

    print(json.dumps(measure(n=a.scenes, n_val=a.calibration_scenes, out=a.out)["rows"], indent=1))
    return 0


def _bench_editing(a) -> int:
    import json

    from workers.edit_bench import run

    result = run(n=a.cases, n_val=a.calibration_cases, out=a.out)
    print(json.dumps(result["rows"], indent=1))
    return 0


def _tune(a) -> int:
    from workers.tune import command

    return command(a)


FLAGS = {"init_image": "--image", "control_image": "--control"}


def add_job_options(p: argparse.ArgumentParser) -> None:
    """One flag per settable job parameter, generated from the schema (its type, choices and description)."""
    import enum
    import typing

    from shared.jobs.schema import JobOptions

    for name, field in JobOptions.model_fields.items():
        kind = next(t for t in typing.get_args(field.annotation) if t is not type(None))
        if typing.get_origin(kind) is typing.Annotated:  # the preset: a name checked when the job is made
            kind = typing.get_args(kind)[0]
        flag = FLAGS.get(name) or "--" + name.replace("_", "-")
        if name in FLAGS:  # an image: a file (uploaded first), an upload id, an https URL or a data: URI
            role = "image-to-image's input image" if name == "init_image" else "the ControlNet's control image"
            help_ = f"{role}: a FILE (uploaded first), an upload id, an https URL or a data: URI"
            p.add_argument(flag, dest=name, metavar="FILE", help=help_)
        elif isinstance(kind, type) and issubclass(kind, enum.Enum):
            p.add_argument(flag, choices=[m.value for m in kind], help=field.description)
        elif typing.get_origin(kind) is typing.Literal:
            p.add_argument(flag, choices=typing.get_args(kind), help=field.description)
        else:
            p.add_argument(flag, type=kind, help=field.description)


def build_parser() -> argparse.ArgumentParser:
    from workers.demo import DEMO_PROMPTS

    ap = argparse.ArgumentParser(prog="adq", description=__doc__)
    ap.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("submit", help="enqueue a text-to-image job (or a batch, with --file)")
    p.add_argument("prompt", nargs="?")
    add_job_options(p)
    p.add_argument("--priority", choices=PRIORITIES, help="queue priority (default normal)")
    p.add_argument("--webhook-url", help="POSTed a signed event when the job finishes")
    p.add_argument("--file", help="submit one batch: a file with one prompt per line")
    p.add_argument("--idempotency-key")
    p.add_argument("--wait", action="store_true", help="show progress until the job finishes")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=_submit)

    p = sub.add_parser("watch", help="follow a job's events with a live progress line until it finishes")
    p.add_argument("job_id")
    p.add_argument("--timeout", type=float)
    p.add_argument("--json", action="store_true", help="no progress line; print the final job as JSON")
    p.set_defaults(fn=_watch)

    p = sub.add_parser("jobs", help="list jobs, newest first")
    p.add_argument("--status", action="append", help="only this status (repeatable)")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--cursor", help="next page (printed after a full page)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=_jobs)

    p = sub.add_parser("prune", help="delete images of jobs finished over ADQ_RESULT_TTL_S ago; mark them expired")
    p.add_argument("--ttl", type=float, help="seconds (default ADQ_RESULT_TTL_S)")
    p.add_argument("--limit", type=int, default=1000, help="most jobs per pass")
    p.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    p.add_argument("--every", type=float, help="run again every this many seconds (a scheduler's loop)")
    p.set_defaults(fn=_prune, service=True)

    for name, fn, helptext in (
        ("status", _status, "show a job"),
        ("cancel", _cancel, "cancel an unfinished job"),
        ("retry", _retry, "restart a failed job at the stage that failed, fresh budgets"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("job_id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(fn=fn)

    p = sub.add_parser("result", help="download a job's image")
    p.add_argument("job_id")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--student", action="store_true", help="the student image instead of the final one")
    p.set_defaults(fn=_result)

    sub.add_parser("migrate", help="bring the database to the newest schema").set_defaults(fn=_migrate, service=True)
    p = sub.add_parser("presets", help="list model presets and where each comes from (ADQ_PRESETS_FILE)")
    p.add_argument("--check", nargs="+", metavar="FILE", help="validate presets files without starting anything")
    p.set_defaults(fn=_presets)
    p = sub.add_parser("init-storage", help="create the S3 bucket or storage folder if missing")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the store to come up")
    p.set_defaults(fn=_init_storage)

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
    p.set_defaults(fn=_calibrate)

    p = sub.add_parser("webhook-secret", help="print the secret a tenant's webhook receiver verifies with")
    p.add_argument("name", help="the API key's name (the job owner)")
    p.set_defaults(fn=_webhook_secret)

    p = sub.add_parser("api-key", help="make a new API key and print it with its hashed ADQ_API_KEYS entry")
    p.add_argument("name", help="the key's name: the tenant that owns the jobs it submits")
    p.add_argument("--webhook-secret", action="store_true", help="also print the tenant's webhook secret")
    p.set_defaults(fn=_api_key)

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
    p.set_defaults(fn=_tune)

    p = sub.add_parser("worker", help="run a worker pool bound to its queue")
    p.add_argument("pool", choices=["student", "teacher", "webhooks"])
    p.add_argument(
        "--concurrency",
        type=int,
        help="jobs in flight per process (overlapped design, default ADQ_WORKER_THREADS), or pool processes, one "
        "per GPU (ADQ_WORKER_DESIGN=serial, default 1)",
    )
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--hostname", help="Celery node name (default <pool>@%%h)")
    p.add_argument(
        "--pipeline",
        metavar="MODULE:ATTR",
        help="serve an AdaptiveDiffusionPipeline (or a zero-argument callable returning one) from your own module; "
        "jobs reach it by the preset name it declares (name=)",
    )
    p.add_argument("--queues", help=argparse.SUPPRESS)
    p.set_defaults(fn=_worker)

    p = sub.add_parser("up", help="gateway, both worker pools and the controller in one foreground process tree")
    p.add_argument("--port", type=int, default=8000, help="the gateway's port on 127.0.0.1 (default 8000)")
    p.set_defaults(fn=_up)

    p = sub.add_parser("api", help="serve the HTTP gateway")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--insecure", action="store_true", help="serve without API keys on a non-loopback address (refused otherwise)"
    )
    p.set_defaults(fn=_api, service=True)

    p = sub.add_parser("flower", help="serve Flower (basic auth from ADQ_FLOWER_USER/ADQ_FLOWER_PASSWORD)")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5555)
    p.set_defaults(fn=_flower)

    from workers.autoscale_render import KEDA_FILE

    policy_help = "autoscale policy JSON (default: the shipped data/autoscale.json)"
    p = sub.add_parser("autoscale", help="teacher autoscaling numbers; `render` rewrites infra/k8s/keda.yaml")
    p.add_argument("action", choices=["show", "render"])
    p.add_argument("--config", help=policy_help)
    p.add_argument("--out", default=str(KEDA_FILE), help="where `render` writes (default: %(default)s)")
    p.set_defaults(fn=_autoscale)

    p = sub.add_parser("simulate", help="simulate a day: teacher scaling x control policies, base and drift")
    p.add_argument("--config", help=policy_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dt", type=float, default=1.0, help="time step in seconds")
    p.add_argument("--out-dir", default=".adq/simulate")
    p.add_argument(
        "--json", help="also write one row per (scenario, scaling, control) here; the table and plot take its name"
    )
    from shared.control.simulate import CONTROLS, POLICIES, SCENARIOS

    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="only these scenarios (repeatable)")
    p.add_argument("--scaling", action="append", choices=POLICIES, help="only these scaling policies")
    p.add_argument(
        "--control", action="append", choices=(*CONTROLS, "slo+frontier"), help="only these control policies"
    )
    p.add_argument("--frontier", help="a tune's frontier.json: price quality by it, and add the slo+frontier control")
    p.set_defaults(fn=_simulate)

    p = sub.add_parser("train-shapes", help="train the shapes world's teacher, student, estimator and judge")
    p.add_argument("--out", default="data/models/shapes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every step count")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(fn=_train_shapes)

    p = sub.add_parser(
        "train-shapes-controlnet", help="train a mask ControlNet for the shapes teacher (wall-clock budget)"
    )
    p.add_argument("--minutes", type=float, default=25.0, help="stop training after this much wall clock")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=_train_shapes_controlnet)

    p = sub.add_parser("controller", help="publish the teacher's effective share and desired replicas (leader-elected)")
    p.add_argument("--interval", type=float, help="seconds between solves (default ADQ_CONTROL_INTERVAL_S)")
    p.set_defaults(fn=_controller, service=True)

    p = sub.add_parser("alive", help="exit 0 if this host's POOL worker is consuming (a liveness probe), else 1")
    p.add_argument("pool", choices=["student", "teacher", "webhooks"])
    p.add_argument("--max-age", type=float, default=120.0, help="seconds since its last mark (default %(default)s)")
    p.set_defaults(fn=_alive)

    p = sub.add_parser("sweep", help="re-send jobs whose message may be lost")
    p.add_argument("--older-than", type=float, help="seconds (default ADQ_SWEEP_AFTER_S)")
    p.add_argument("--loop", action="store_true")
    p.add_argument("--interval", type=float, default=60.0)
    p.set_defaults(fn=_sweep, service=True)

    p = sub.add_parser("demo", help="run the system on embedded defaults: workers, jobs, table, gallery")
    p.add_argument("--prompts", help=f"prompt file (default: the preset's, else {DEMO_PROMPTS})")
    p.add_argument("--preset", default="shapes", help="preset to demo (default: shapes, the trained one)")
    p.add_argument("--k", type=int)
    p.set_defaults(fn=_demo)

    p = sub.add_parser("bench", help="benchmarks")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    b = bsub.add_parser("overhead", help="jobs/s through the system vs raw Celery no-op tasks/s")
    b.add_argument("--jobs", type=int, default=300)
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=_bench)
    b = bsub.add_parser("control", help="live tau and the slo controller on the real system (Redis, PostgreSQL)")
    b.add_argument("--rate", type=float, default=14.0, help="jobs/s of the load step")
    b.add_argument("--seconds", type=float, default=20.0, help="length of the load step")
    b.add_argument("--teacher-ms", type=float, default=200.0, help="fixed cost of one teacher image")
    b.add_argument("--target", type=float, default=2.0, help="teacher p95 target of the slo policy, seconds")
    b.add_argument("--drift-jobs", type=int, default=300)
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=_bench_control)
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
    b.set_defaults(fn=_bench_efficiency)
    b = bsub.add_parser("metrics", help="one /metrics scrape's cost as the jobs table grows (Redis, PostgreSQL)")
    b.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="table sizes, increasing")
    b.add_argument("--scrapes", type=int, default=20, help="timed scrapes per size (the median is reported)")
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=_bench_metrics)
    b = bsub.add_parser("sharing", help="weights held when roles share one base vs separate copies (tiny twins)")
    b.add_argument("--json", help="also write the figures to this file")
    b.set_defaults(fn=_bench_sharing)
    b = bsub.add_parser("editing", help="adaptive image-to-image vs the teacher's at matched steps (shapes, judge)")
    b.add_argument("--cases", type=int, default=300, help="held-out edits graded")
    b.add_argument("--calibration-cases", type=int, default=150, help="validation edits that set tau")
    b.add_argument("--out", default="data/results", help="folder for editing.json")
    b.set_defaults(fn=_bench_editing)
    b = bsub.add_parser("controlnet", help="adaptive ControlNet generation vs the teacher's at matched steps (shapes)")
    b.add_argument("--scenes", type=int, default=300, help="held-out scenes graded")
    b.add_argument("--calibration-scenes", type=int, default=150, help="validation scenes that set tau")
    b.add_argument("--out", default="data/results", help="folder for control.json")
    b.set_defaults(fn=_bench_control_net)
    b = bsub.add_parser("quality", help="adaptive vs student vs teacher on held-out shapes prompts (judge)")
    b.add_argument("--prompts", type=int, default=500)
    b.add_argument("--batch", type=int, default=50)
    b.add_argument("--json", help="also write the results to this file")
    b.add_argument("--out-dir", default=".adq/bench-quality")
    b.set_defaults(fn=_bench_quality)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from shared.core import logs
    from shared.core.config import get_settings

    # Service processes (the sweeper, the controller, a migration Job) log at INFO as the workers do: what they
    # re-send or decide is the record an operator reads after an outage.
    service = args.verbose or getattr(args, "service", False)
    logs.configure(logging.INFO if service else logging.WARNING, get_settings().log_format)
    # kombu warns that filesystem:// names no host; that is how the embedded broker is spelled.
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    # Alembic names each plugin it sets up at INFO: noise in a service's log, not a record of what it did.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        if get_settings().presets_file:  # an invalid presets file stops every command, workers included, at start
            from shared.method.presets import all_presets

            all_presets()
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

"""Commands that run the system's processes: a worker pool, the gateway, Flower, the controller, the sweeper, `adq up`,
the demo, and the set-up steps (migrate, init-storage) and the liveness probe."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adq.core.config import get_settings
from adq.core.errors import InputError


def migrate(a) -> int:
    from adq.jobs.db.migrate import current, upgrade

    upgrade()
    print(f"database at revision {current()}")
    return 0


def worker(a) -> int:
    from adq.workers.launch import run

    run(
        a.pool,
        pipeline=a.pipeline,
        concurrency=a.concurrency,
        loglevel=a.loglevel,
        hostname=a.hostname,
        queues=a.queues,
        presets=[x.strip() for x in a.presets.split(",") if x.strip()] if a.presets and a.presets != "all" else None,
    )
    return 0


def alive(a) -> int:
    from adq.tasks.liveness import age_s

    age = age_s(a.pool)
    if age is None or age > a.max_age:
        state = "never" if age is None else f"{age:.0f} s ago"
        print(f"the {a.pool} worker is not consuming: last marked {state} (limit {a.max_age:g} s)", file=sys.stderr)
        return 1
    print(f"the {a.pool} worker is consuming (marked {age:.0f} s ago)")
    return 0


def sweep(a) -> int:
    from adq.tasks.sweeper import sweep_forever, sweep_once

    if a.loop:
        sweep_forever(a.interval, a.older_than)
    print(f"re-sent {sweep_once(a.older_than)} job(s)")
    return 0


def demo(a) -> int:
    from adq.workers.demo import run_demo

    jobs = run_demo(Path(a.prompts) if a.prompts else None, k=a.k, preset=a.preset)
    return 0 if jobs and all(j.status == "succeeded" for j in jobs) else 1


def check_api_exposure(host: str, insecure: bool) -> None:
    """With no API keys the gateway serves anyone who can reach it: only on loopback, unless told that is meant."""
    import ipaddress

    from adq.gateway.auth import parse_keys

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


def up(a) -> int:
    from adq.workers.up import run

    return run(port=a.port)


def api(a) -> int:
    from adq.gateway.app import create_app
    from adq.gateway.server import serve

    check_api_exposure(a.host, a.insecure)
    serve(create_app(), a.host, a.port, log_level="info" if a.verbose else "warning")
    return 0


def flower(a) -> int:
    if not get_settings().flower_password:
        raise InputError(
            "set ADQ_FLOWER_PASSWORD (and optionally ADQ_FLOWER_USER): Flower is never served without basic auth"
        )
    import os

    from adq.tasks import app

    # Flower reads FLOWER_* from the environment: the password never appears in an argument list.
    os.environ["FLOWER_BASIC_AUTH"] = f"{get_settings().flower_user}:{get_settings().flower_password}"
    if get_settings().flower_broker_api:  # RabbitMQ's management API: queue lengths on the Broker tab
        os.environ["FLOWER_BROKER_API"] = get_settings().flower_broker_api
    app.start(["flower", f"--address={a.address}", f"--port={a.port}"])
    return 0


def init_storage(a) -> int:
    """Create the S3 bucket (or the storage folder) if missing; waits for the store to come up."""
    import time

    from adq.core.errors import StorageUnavailable
    from adq.jobs.storage import S3Storage, get_storage

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


def controller(a) -> int:
    from adq.tasks.controller import run

    run(interval_s=a.interval)
    return 0


def register(sub) -> None:
    sub.add_parser("migrate", help="bring the database to the newest schema").set_defaults(fn=migrate, service=True)

    p = sub.add_parser("init-storage", help="create the S3 bucket or storage folder if missing")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the store to come up")
    p.set_defaults(fn=init_storage)

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
    p.add_argument(
        "--presets",
        metavar="NAME,NAME",
        help="serve only these presets: consume their queues (a preset's group has queues of its own), and load and "
        "warm their models before consuming; default all: every queue, warming the default preset",
    )
    p.add_argument("--queues", help=argparse.SUPPRESS)
    p.set_defaults(fn=worker, service=True)

    p = sub.add_parser("up", help="gateway, both worker pools and the controller in one foreground process tree")
    p.add_argument("--port", type=int, default=8000, help="the gateway's port on 127.0.0.1 (default 8000)")
    p.set_defaults(fn=up)

    p = sub.add_parser("api", help="serve the HTTP gateway")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--insecure", action="store_true", help="serve without API keys on a non-loopback address (refused otherwise)"
    )
    p.set_defaults(fn=api, service=True)

    p = sub.add_parser("flower", help="serve Flower (basic auth from ADQ_FLOWER_USER/ADQ_FLOWER_PASSWORD)")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5555)
    p.set_defaults(fn=flower)

    p = sub.add_parser("controller", help="publish the teacher's effective share and desired replicas (leader-elected)")
    p.add_argument("--interval", type=float, help="seconds between solves (default ADQ_CONTROL_INTERVAL_S)")
    p.set_defaults(fn=controller, service=True)

    p = sub.add_parser("alive", help="exit 0 if this host's POOL worker is consuming (a liveness probe), else 1")
    p.add_argument("pool", choices=["student", "teacher", "webhooks"])
    p.add_argument("--max-age", type=float, default=120.0, help="seconds since its last mark (default %(default)s)")
    p.set_defaults(fn=alive)

    p = sub.add_parser("sweep", help="re-send jobs whose message may be lost")
    p.add_argument("--older-than", type=float, help="seconds (default ADQ_SWEEP_AFTER_S)")
    p.add_argument("--loop", action="store_true")
    p.add_argument("--interval", type=float, default=60.0)
    p.set_defaults(fn=sweep, service=True)

    from adq.workers.demo import DEMO_PROMPTS

    p = sub.add_parser("demo", help="run the system on embedded defaults: workers, jobs, table, gallery")
    p.add_argument("--prompts", help=f"prompt file (default: the preset's, else {DEMO_PROMPTS})")
    p.add_argument("--preset", default="shapes", help="preset to demo (default: shapes, the trained one)")
    p.add_argument("--k", type=int)
    p.set_defaults(fn=demo)

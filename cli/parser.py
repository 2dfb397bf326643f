"""`adq`: submit and inspect jobs, run workers, calibrate, migrate, demo and benchmark."""

from __future__ import annotations

import argparse
import logging
import sys

from adq.cli import bench, jobs, models, ops, services
from adq.core.errors import AdqError, InputError

TOPICS = (jobs, services, models, ops, bench)  # the order `adq --help` lists the commands in


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="adq", description=__doc__)
    ap.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for topic in TOPICS:
        topic.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from adq.core import logs
    from adq.core.config import get_settings

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
            from adq.method.presets import all_presets

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

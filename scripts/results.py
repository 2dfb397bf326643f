"""`make results`: regenerate the committed results under data/results/ and record, for every file, the command and
the commit that produced it (data/results/MANIFEST.json).

    .venv/bin/python scripts/results.py                 # every result (the quality benchmark alone takes ~50 min)
    .venv/bin/python scripts/results.py sharing editing # some of them
    .venv/bin/python scripts/results.py --list

Each command runs on the embedded defaults (no server) with a scratch ADQ_HOME, from the repository's root."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "results"
MANIFEST = RESULTS / "MANIFEST.json"
TUNE = "data/results/tune"

# name -> (the adq command, the files it writes under data/results/). Order matters: the simulation prices quality
# with the curve the quality benchmark writes, and the frontier simulation reads the tune's frontier.
JOBS: dict[str, tuple[str, list[str]]] = {
    "quality": (
        "adq bench quality --prompts 2000 --out-dir data/results",
        ["quality.json", "quality.md", "quality.png", "quality_vs_k.json"],
    ),
    "simulation": (
        "adq simulate --out-dir data/results --json data/results/simulation.json",
        ["simulation.json", "simulation.md", "simulation.png"],
    ),
    "sharing": ("adq bench sharing --json data/results/sharing.json", ["sharing.json"]),
    "residency": (
        "adq bench residency --json data/results/residency.json --plot data/results/residency.png",
        ["residency.json", "residency.png"],
    ),
    "realsize": ("adq bench realsize --json data/results/realsize.json", ["realsize.json"]),
    "batching": ("adq bench batching --json data/results/batching.json", ["batching.json"]),
    "editing": ("adq bench editing --out data/results", ["editing.json"]),
    "controlnet": ("adq bench controlnet --out data/results", ["control.json"]),
    "tune": (
        f"adq tune data/prompts/shapes-tune.txt --preset shapes --student-steps 1,2,4 --teacher-steps 4,8,12,20 "
        f"--sigmas 0.7 --budget 6 --budget 10 --budget 14 --heldout data/prompts/shapes-tune-heldout.txt "
        f"--out {TUNE}",
        [
            "tune/frontier.json",
            "tune/frontier.md",
            "tune/frontier.png",
            "tune/heldout.json",
            "tune/heldout.md",
            *(f"tune/shapes-tuned-{b}.{ext}" for b in (6, 10, 14) for ext in ("yaml", "percentiles.json")),
        ],
    ),
    "simulation-frontier": (
        f"adq simulate --frontier {TUNE}/frontier.json --control slo --scaling schedule+queue "
        f"--scaling schedule+queue+controller --out-dir {TUNE} --json {TUNE}/simulation-frontier.json",
        ["tune/simulation-frontier.json", "tune/simulation-frontier.md", "tune/simulation-frontier.png"],
    ),
}


# Results that run on the services (the machine's Redis and PostgreSQL, as scripts/bench.sh uses them).
SERVICES = {
    "batching": {
        "ADQ_BROKER_URL": "redis://127.0.0.1:6379/14",
        "ADQ_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/adq_bench",
    }
}


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    # The results themselves do not make the code dirty: a run rewrites them
    status = ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!data/results"]
    dirty = subprocess.run(status, cwd=ROOT, capture_output=True)
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def record(files: list[str], command: str, produced_by: str) -> None:
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    made = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for f in files:
        manifest[f] = {"command": command, "commit": produced_by, "made": made}
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")


def run(name: str) -> None:
    command, files = JOBS[name]
    at = commit()  # before the run: the code that produced the files
    env = os.environ | {"ADQ_HOME": str(ROOT / ".adq" / "results" / name)} | SERVICES.get(name, {})
    adq = ROOT / ".venv" / "bin" / "adq"
    print(f"== {name}: {command}", flush=True)
    subprocess.run([str(adq), *shlex.split(command)[1:]], cwd=ROOT, env=env, check=True)
    missing = [f for f in files if not (RESULTS / f).is_file()]
    if missing:
        sys.exit(f"{name} did not write {missing}")
    record(files, command, at)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", choices=[[], *JOBS], help="results to regenerate (default: all)")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        for name, (command, files) in JOBS.items():
            print(f"{name}: {command}\n  -> {', '.join(files)}")
        return
    for name in a.names or JOBS:
        run(name)


if __name__ == "__main__":
    main()

"""Every committed result says what produced it: data/results/MANIFEST.json names, per file, the `adq` command and
the commit, and `make results` (scripts/results.py) runs exactly those commands."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex

from adq.cli import build_parser
from tests.helpers import ROOT

RESULTS = ROOT / "data" / "results"


def _jobs() -> dict:
    spec = importlib.util.spec_from_file_location("results_script", ROOT / "scripts" / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.JOBS


def test_every_result_names_its_command_and_commit():
    manifest = json.loads((RESULTS / "MANIFEST.json").read_text())
    files = {p.relative_to(RESULTS).as_posix() for p in RESULTS.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    assert files == set(manifest), (sorted(files - set(manifest)), sorted(set(manifest) - files))
    made_by = {f: command for command, outputs in _jobs().values() for f in outputs}
    assert set(made_by) == files  # make results regenerates every one of them
    for name, entry in manifest.items():
        assert re.fullmatch(r"[0-9a-f]{40}", entry["commit"]), (name, entry)  # committed code, not a dirty tree
        assert entry["command"] == made_by[name], name
        argv = shlex.split(entry["command"])
        assert argv[0] == "adq"
        build_parser().parse_args(argv[1:])  # a command this CLI still takes

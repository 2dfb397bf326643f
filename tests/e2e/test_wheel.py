"""The package as users install it: a wheel built from the repository, installed into a fresh virtual environment
outside it, run from another folder. Nothing may be found through the checkout.

The fresh environment borrows this one's dependencies through a path entry (a ``.pth`` line), so no 6 GB install is
repeated; a plain path entry is not a site folder, so the editable install's finder in this environment's
site-packages is not loaded there, and ``import adq`` can only find the wheel's copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import ROOT

IGNORED = shutil.ignore_patterns(".git", ".venv", ".adq", "build", "*.egg-info", "__pycache__", ".pytest_cache")


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}: {out.stdout[-3000:]}{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(the fresh environment's bin folder, an environment without ADQ_* variables) with the wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADQ_", "PYTHON"))}
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(base), "."],
        source,
        env,
    )
    (wheel,) = base.glob("adaptive_queue-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, env)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q"]
    _run([*pip, "--no-deps", "--no-index", str(wheel)], base, env)
    return venv / "bin", env | {"ADQ_TORCH_THREADS": "1"}


def test_the_wheel_installs_one_package_and_the_papers_module(installed):
    """Nothing with a generic name (shared, tasks, workers, gateway, cli, bench) lands in a user's site-packages."""
    site = next((installed[0].parent / "lib").glob("python3*/site-packages"))
    names = {p.name for p in site.iterdir()} - {"_borrowed_dependencies.pth", "__pycache__"}
    assert names == {"adq", "adaptive_diffusion.py", "adaptive_queue-0.1.0.dist-info"}, sorted(names)
    mapped = {p.name for p in (site / "adq").iterdir() if p.is_dir()}
    assert {"tasks", "gateway", "workers", "cli", "data", "core", "jobs", "method", "control"} <= mapped


def test_the_wheel_installs_only_the_package_and_its_data(installed):
    bin_dir, env = installed
    probe = "import json, adq, adq.core.resources as r; print(json.dumps([adq.__file__, str(r.data_dir())]))"
    module, data = json.loads(_run([str(bin_dir / "python"), "-c", probe], bin_dir, env).stdout)
    assert Path(module).is_relative_to(bin_dir.parent) and not Path(module).is_relative_to(ROOT)
    assert Path(data).is_relative_to(bin_dir.parent)
    for shipped in ("percentiles/shapes.json", "prompts/shapes-demo.txt", "models/shapes/teacher/model_index.json"):
        assert (Path(data) / shipped).is_file(), shipped
    assert not (Path(data) / "results" / "quality.png").exists()  # benchmark outputs stay in the repository


def test_the_installed_commands_run_from_another_folder(installed, tmp_path):
    bin_dir, env = installed
    env = env | {"ADQ_HOME": str(tmp_path / "home")}
    adq = str(bin_dir / "adq")
    presets = _run([adq, "presets"], tmp_path, env).stdout
    assert "\nshapes " in presets, presets
    demo = _run([adq, "demo", "--k", "0"], tmp_path, env, timeout=600).stdout  # the shipped prompts; no teacher
    assert "16 jobs, 16 succeeded" in demo
    shipped = (
        Path(
            _run(
                [str(bin_dir / "python"), "-c", "import adq.core.resources as r; print(r.data_dir())"], tmp_path, env
            ).stdout.strip()
        )
        / "percentiles"
        / "null.json"
    )
    recorded = _run([adq, "calibrate", "--preset", "null", "--from-json", str(shipped)], tmp_path, env).stdout
    assert "null" in recorded
    bench = subprocess.run([adq, "bench", "sharing"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert bench.returncode == 2 and "source checkout" in bench.stderr, bench.stderr  # not a traceback
    # Migrations are package data too: the embedded database was created by them.
    assert (tmp_path / "home" / "adq.db").is_file()


def test_setting_adq_data_dir_replaces_the_shipped_folder(installed, tmp_path):
    bin_dir, env = installed
    own = tmp_path / "data"
    (own / "percentiles").mkdir(parents=True)
    (own / "percentiles" / "shapes.json").write_text(json.dumps({"10": -9.0, "50": -5.0, "90": -1.0}))
    env = env | {"ADQ_HOME": str(tmp_path / "home"), "ADQ_DATA_DIR": str(own)}
    probe = "from adq.method.presets import get_preset; print(get_preset('shapes').percentiles_path)"
    assert _run([str(bin_dir / "python"), "-c", probe], tmp_path, env).stdout.strip() == str(
        own / "percentiles" / "shapes.json"
    )
    missing = subprocess.run(
        [str(bin_dir / "python"), "-c", probe],
        cwd=tmp_path,
        env=env | {"ADQ_DATA_DIR": str(tmp_path / "nowhere")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0 and "ADQ_DATA_DIR" in missing.stderr and "is not a folder" in missing.stderr


def test_the_dockerfile_builds_from_what_the_wheel_needs_and_runs_outside_the_sources():
    text = (ROOT / "Dockerfile").read_text()
    copied = {part.rstrip("/") for line in text.splitlines() if line.startswith("COPY") for part in line.split()[1:-1]}
    needed = {
        "pyproject.toml",
        "setup.py",
        "adaptive_diffusion.py",
        "data",
        "shared",
        "tasks",
        "workers",
        "gateway",
        "cli",
    }
    assert needed <= copied, needed - copied
    assert "rm -rf /src" in text and "WORKDIR /var/lib/adq" in text  # no source folder beside the running process

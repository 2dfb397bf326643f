"""Every `adq` command runs, at a smoke size (seconds, tiny or null models), so none can rot unnoticed: two
benchmarks once crashed for months because nothing ran them.

``SMOKE`` lists each command's smoke run, here or in the test that already drives it (a long-running service such
as `adq up` is exercised where it is tested in depth). ``test_every_command_has_a_smoke_test`` walks the parser:
a new command without an entry fails the suite."""

from __future__ import annotations

import argparse
import ast
import json
import shutil

import pytest

from adq.cli import build_parser, main
from adq.core.resources import shipped_data_dir
from tests.helpers import ROOT, configured

# Commands smoke-tested by a test elsewhere ("file::function", which must exist): long-running services, each
# started for real and stopped there.
ELSEWHERE = {
    "worker": "tests/e2e/test_broker_restart.py::test_workers_of_every_pool_outlive_redis_restarts_and_kills",
    "up": "tests/e2e/test_up.py::test_up_serves_the_console_and_stops_cleanly_on_ctrl_c",
    "api": "tests/e2e/test_up.py::test_up_serves_the_console_and_stops_cleanly_on_ctrl_c",
    "flower": "tests/e2e/test_operations.py::test_flower_sees_both_pools",
    "controller": "tests/e2e/test_control.py::test_two_controllers_elect_one_leader_and_the_other_takes_over",
    "demo": "tests/e2e/test_demo.py::test_demo_runs_on_embedded_defaults",
    "alive": "tests/e2e/test_broker_restart.py::test_workers_of_every_pool_outlive_redis_restarts_and_kills",
    "init-storage": "tests/integration/test_storage.py::test_init_storage_creates_a_missing_bucket",
}


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    """Every leaf command of the parser: ``submit``, ``bench quality``, ..."""
    out = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out |= commands(sub, f"{prefix}{name} ") or {prefix + name}
    return out


def _run(argv: list[str], capsys, code: int = 0) -> str:
    assert main(argv) == code, capsys.readouterr()
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return captured.out


@pytest.fixture()
def embedded(tmp_path):
    """Embedded defaults in a scratch home: filesystem broker, SQLite, file storage; no worker."""
    with configured(ADQ_HOME=str(tmp_path / "home"), ADQ_BROKER_URL="", ADQ_DATABASE_URL="", ADQ_STORAGE_URL=""):
        yield tmp_path


def smoke_job_commands(embedded, capsys):
    out = _run(["submit", "a red circle", "--preset", "null", "--seed", "3", "--json"], capsys)
    job = json.loads(out)["id"]
    assert json.loads(_run(["status", job, "--json"], capsys))["status"] == "queued"
    assert job in _run(["jobs", "--limit", "5"], capsys)
    assert json.loads(_run(["cancel", job, "--json"], capsys))["status"] == "cancelled"
    assert json.loads(_run(["watch", job, "--json", "--timeout", "5"], capsys))["status"] == "cancelled"
    _run(["retry", job], capsys, code=1)  # only failed jobs: a clear refusal
    _run(["result", job, "-o", str(embedded / "x.png")], capsys, code=1)  # a cancelled job has no image
    assert "0 job" in _run(["prune", "--ttl", "0", "--dry-run"], capsys)
    _run(["migrate"], capsys)
    assert "re-sent 0 job(s)" in _run(["sweep"], capsys)


def smoke_presets_and_keys(embedded, capsys):
    assert "shapes" in _run(["presets"], capsys)
    import yaml

    from adq.method.presets import PRESETS_FILE

    own = embedded / "mine.yaml"
    own.write_text(yaml.safe_dump({"mine": yaml.safe_load(PRESETS_FILE.read_text())["null"] | {"k": 20}}))
    _run(["presets", "--check", str(own)], capsys)
    key = _run(["api-key", "carol"], capsys)
    assert "carol:sha256:" in key
    with configured(ADQ_WEBHOOK_SECRET="a-secret-of-sufficient-length-0123456789"):
        assert len(_run(["webhook-secret", "carol"], capsys).strip()) > 20


def smoke_calibrate(embedded, capsys):
    prompts = embedded / "prompts.txt"
    prompts.write_text("a red circle\na blue square\na green triangle\n")
    out = embedded / "null.json"
    _run(["calibrate", str(prompts), "--preset", "null", "--out", str(out)], capsys)
    assert set(json.loads(out.read_text())) >= {"10", "50", "90"}
    _run(
        ["calibrate", "--preset", "null", "--from-json", str(shipped_data_dir() / "percentiles" / "null.json")], capsys
    )


def smoke_tune(embedded, capsys):
    prompts = embedded / "prompts.txt"
    prompts.write_text("\n".join(f"a red circle {i}" for i in range(20)) + "\n")  # the least a tune takes
    out = embedded / "tune"
    _run(
        ["tune", str(prompts), "--preset", "null", "--judge", "tests.plugins.estimators:brightness", "--budget", "3"]
        + ["--out", str(out)]
        + ["--teacher-steps", "2", "--ks", "0,50", "--sigmas", "0.5", "--batch-size", "6"],
        capsys,
    )
    assert (out / "frontier.json").is_file()


def smoke_autoscale_and_simulate(embedded, capsys):
    assert "teacher_max:" in _run(["autoscale", "show"], capsys)
    keda = embedded / "keda.yaml"
    _run(["autoscale", "render", "--out", str(keda)], capsys)
    assert keda.read_text() == (ROOT / "infra" / "k8s" / "keda.yaml").read_text()
    out = embedded / "sim.json"
    _run(
        ["simulate", "--dt", "60", "--scenario", "base", "--scaling", "static", "--control", "fixed"]
        + ["--out-dir", str(embedded / "sim"), "--json", str(out)],
        capsys,
    )
    assert json.loads(out.read_text())
    groups = embedded / "groups.json"
    _run(["simulate", "--dt", "60", "--groups", "flux=0.3,sdxl=0.7", "--json", str(groups)], capsys)
    assert [r["pool"] for r in json.loads(groups.read_text())] == ["flux", "sdxl", "shared"]


def smoke_training(embedded, capsys):
    _run(["train-shapes", "--out", str(embedded / "shapes"), "--scale", "0.002", "--threads", "1"], capsys)
    assert (embedded / "shapes" / "judge" / "model.safetensors").is_file()
    # The ControlNet trainer writes beside the shipped teacher it starts from: a copy, under ADQ_DATA_DIR.
    data = embedded / "data"
    shutil.copytree(shipped_data_dir() / "models" / "shapes" / "teacher", data / "models" / "shapes" / "teacher")
    with configured(ADQ_DATA_DIR=str(data)):
        _run(["train-shapes-controlnet", "--minutes", "0.05"], capsys)
    assert (data / "models" / "shapes" / "controlnet" / "TRAINING.json").is_file()


def smoke_model_benchmarks(embedded, capsys):
    _run(["bench", "quality", "--prompts", "4", "--batch", "4", "--out-dir", str(embedded / "q")], capsys)
    assert (embedded / "q" / "quality.json").is_file() and (embedded / "q" / "quality_vs_k.json").is_file()
    _run(["bench", "editing", "--cases", "2", "--calibration-cases", "4", "--out", str(embedded / "e")], capsys)
    _run(["bench", "controlnet", "--scenes", "2", "--calibration-scenes", "4", "--out", str(embedded / "c")], capsys)
    _run(["bench", "sharing", "--json", str(embedded / "sharing.json")], capsys)
    _run(["bench", "residency", "--jobs", "10", "--json", str(embedded / "res.json")], capsys)
    assert json.loads((embedded / "res.json").read_text())["budgeted"]["peak"] > 0
    # The real-size twins: SD1.5 at its real size on the CPU, at a tiny side (the GPU script's own run is on a GPU)
    _run(["bench", "realsize", "--family", "sd15", "--side", "64", "--json", str(embedded / "r.json")], capsys)
    gpu = ["bench", "gpu", "--device", "cpu", "--family", "sd15", "--side", "64", "--batch", "1"]
    _run([*gpu, "--json", str(embedded / "g.json")], capsys)
    assert json.loads((embedded / "g.json").read_text())["rows"][0]["images_per_s"] > 0


def smoke_service_benchmarks(system, capsys, tmp_path, amqp_url):
    _run(["bench", "overhead", "--jobs", "20", "--rabbitmq", amqp_url, "--json", str(tmp_path / "o.json")], capsys)
    _run(["bench", "metrics", "--rows", "400", "800", "--scrapes", "1", "--json", str(tmp_path / "m.json")], capsys)
    _run(
        ["bench", "control", "--rate", "5", "--seconds", "2", "--teacher-ms", "20", "--drift-jobs", "20"]
        + ["--json", str(tmp_path / "c.json")],
        capsys,
    )
    _run(
        ["bench", "efficiency", "--student-ms", "2", "--teacher-ms", "4", "--student-side", "64"]
        + ["--teacher-side", "64", "--student-jobs", "26", "--teacher-jobs", "26", "--json", str(tmp_path / "e.json")],
        capsys,
    )
    _run(["bench", "batching", "--batch", "2", "--jobs", "30", "--json", str(tmp_path / "b.json")], capsys)
    assert all((tmp_path / f"{n}.json").is_file() for n in "omceb")


SMOKE = {
    **dict.fromkeys(
        ["submit", "status", "jobs", "cancel", "watch", "retry", "result", "prune", "migrate", "sweep"],
        smoke_job_commands,
    ),
    **dict.fromkeys(["presets", "api-key", "webhook-secret"], smoke_presets_and_keys),
    "calibrate": smoke_calibrate,
    "tune": smoke_tune,
    **dict.fromkeys(["autoscale", "simulate"], smoke_autoscale_and_simulate),
    **dict.fromkeys(["train-shapes", "train-shapes-controlnet"], smoke_training),
    **dict.fromkeys(
        ["bench quality", "bench editing", "bench controlnet", "bench sharing", "bench realsize", "bench gpu"]
        + ["bench residency"],
        smoke_model_benchmarks,
    ),
    **dict.fromkeys(
        ["bench overhead", "bench metrics", "bench control", "bench efficiency", "bench batching"],
        smoke_service_benchmarks,
    ),
}


def test_every_command_has_a_smoke_test():
    missing = commands(build_parser()) - set(SMOKE) - set(ELSEWHERE)
    assert missing == set(), f"add a smoke run for {sorted(missing)} to tests/e2e/test_commands.py"
    for where in ELSEWHERE.values():
        path, name = where.split("::")
        tree = ast.parse((ROOT / path).read_text())
        (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name] or [None]
        assert fn is not None, where


@pytest.mark.parametrize("smoke", sorted(set(SMOKE.values()), key=lambda f: f.__name__), ids=lambda f: f.__name__)
def test_smoke(smoke, request, capsys):
    fixture = "system" if smoke is smoke_service_benchmarks else "embedded"
    kwargs = {"capsys": capsys}
    if smoke is smoke_service_benchmarks:
        kwargs["tmp_path"] = request.getfixturevalue("tmp_path")
        kwargs["amqp_url"] = request.getfixturevalue("amqp_url")
    smoke(request.getfixturevalue(fixture), **kwargs)

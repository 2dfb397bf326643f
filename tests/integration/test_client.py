"""Submitting through the Python client and the CLI: bad input leaves no row and sends nothing."""

import json
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from adq.core.config import get_settings
from adq.core.errors import CalibrationError, IdempotencyConflict, InputError
from adq.jobs.db.models import Job
from adq.jobs.db.session import session_scope
from adq.tasks import client


def job_count() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(Job))


def queued_messages() -> int:
    return (
        sum(1 for p in (get_settings().broker_folder / "queue").glob("*.msg"))
        if get_settings().broker_folder.exists()
        else 0
    )


def test_submit_records_and_enqueues(sqlite_env):
    view = client.submit("a lighthouse by the sea", k=30, seed=5)
    assert view.status == "queued" and view.k == 30 and view.seed == 5
    assert view.tau == pytest.approx(json.load(open("data/percentiles/tiny.json"))["30"])
    assert view.times["enqueued_at"] is not None
    assert (job_count(), queued_messages()) == (1, 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "x" * 5000}, "5000 characters"),
        ({"k": 101}, "k=101"),
        ({"k": -5}, "k=-5"),
        ({"sigma": 0.0}, "sigma=0.0"),
        ({"sigma": 1.5}, "sigma=1.5"),
        ({"student_steps": 0}, "student_steps=0"),
        ({"teacher_steps": 100000}, "teacher_steps=100000"),
        ({"preset": "nope"}, "unknown preset 'nope'"),
        ({"strategy": "inpaint"}, "strategy='inpaint'"),
    ],
)
def test_bad_input_writes_nothing(sqlite_env, kwargs, message):
    kwargs = {"prompt": "a cat"} | kwargs
    with pytest.raises(InputError, match=message):
        client.submit(kwargs.pop("prompt"), **kwargs)
    assert (job_count(), queued_messages()) == (0, 0)


def test_calibration_mismatch_is_refused(sqlite_env):
    with pytest.raises(CalibrationError, match="steps: calibrated 2, requested 3"):
        client.submit("a cat", student_steps=3)
    with pytest.raises(CalibrationError, match="guidance: calibrated 0.0, requested 8.0"):
        client.submit("a cat", preset="lcm-sdxl")  # the reference's LCM percentiles were sampled at guidance 0
    assert (job_count(), queued_messages()) == (0, 0)


def test_recalibration_makes_the_settings_servable(sqlite_env, tmp_path):
    from adq.control.calibrate import calibrate

    prompts = tmp_path / "p.txt"
    prompts.write_text("a cat\na dog\na red fox\n")
    res = calibrate(prompts, preset="null", n_samples=30, student_steps=3, progress=False)
    view = client.submit("a cat", preset="null", student_steps=3, k=40)
    assert view.tau == pytest.approx(res.percentiles.tau(40))


def test_idempotency_key(sqlite_env):
    a = client.submit("a cat", idempotency_key="req-1")
    b = client.submit("a cat", idempotency_key="req-1")
    assert (a.id, a.created, b.created) == (b.id, True, False)
    with pytest.raises(IdempotencyConflict, match="req-1"):
        client.submit("a dog", idempotency_key="req-1")
    assert (job_count(), queued_messages()) == (1, 1)


def test_cancel_and_missing_job(sqlite_env):
    from adq.core.errors import JobNotFound

    view = client.submit("a cat")
    assert client.cancel(view.id).status == "cancelled"
    with pytest.raises(JobNotFound):
        client.get("00000000-0000-0000-0000-000000000000")


def adq(*args, env_home):
    import os

    env = dict(os.environ, ADQ_HOME=str(env_home))
    return subprocess.run(
        [sys.executable, "-m", "adq.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_submit_json_status_and_bad_input(sqlite_env):
    out = adq("submit", "a koi pond", "--k", "20", "--json", env_home=sqlite_env)
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert view["status"] == "queued" and view["id"]
    status = json.loads(adq("status", view["id"], "--json", env_home=sqlite_env).stdout)
    for field in ("id", "status", "teacher_used", "student_score", "tau", "final_image_key"):
        assert field in status
    bad = adq("submit", "a cat", "--sigma", "0", "--json", env_home=sqlite_env)
    assert bad.returncode == 2 and "sigma=0.0 is out of range (0, 1]" in bad.stderr
    assert job_count() == 1


def test_cli_submits_the_hosted_fields_and_waits_at_most_its_seconds(sqlite_env):
    args = ["--preset", "null", "--n", "2", "--seed", "5", "--format", "webp", "--aspect", "16:9", "--negative", "fog"]
    out = adq("submit", "a koi pond", *args, "--wait", "1", "--json", env_home=sqlite_env)
    assert out.returncode == 0, out.stderr  # no worker runs: the wait runs out and the job is shown as it is
    view = json.loads(out.stdout)
    assert view["status"] == "queued" and view["num_outputs"] == 2 and [o["seed"] for o in view["outputs"]] == [5, 6]
    assert (view["output_format"], view["aspect_ratio"], view["negative_prompt"]) == ("webp", "16:9", "fog")
    bad = adq("submit", "a cat", "--preset", "null", "--n", "5", env_home=sqlite_env)
    assert bad.returncode == 2 and "num_outputs=5" in bad.stderr
    assert job_count() == 2


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "adq.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("submit", "status", "result", "calibrate", "worker", "migrate", "demo", "bench"):
        assert command in out.stdout


def test_cli_retry_restarts_a_failed_job_and_refuses_others(sqlite_env):
    from adq.jobs.db import jobs

    view = client.submit("a paper lantern", k=0, seed=8)
    jobs.fail(view.id, "student: ModelError: weights missing")
    out = adq("retry", view.id, "--json", env_home=sqlite_env)
    assert out.returncode == 0, out.stderr
    retried = json.loads(out.stdout)
    assert (retried["status"], retried["retries"], retried["error"]) == ("queued", 1, None)
    assert retried["history"][0]["error"] == "student: ModelError: weights missing"
    again = adq("retry", view.id, env_home=sqlite_env)
    assert again.returncode == 1 and "only failed jobs can be retried" in again.stderr


def test_every_subcommand_has_help(capsys):
    from adq.cli import build_parser

    # The entry point once, in its own process; then each subcommand's --help through the same parser in this one
    # (argparse answers --help before anything is dispatched, so a process per command only adds start-up time).
    top = subprocess.run([sys.executable, "-m", "adq.cli", "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and top.stdout.startswith("usage: adq "), top.stderr
    commands = build_parser()._subparsers._group_actions[0].choices
    assert len(commands) > 20
    for name in commands:
        assert name in top.stdout, name
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([name, "--help"])
        assert exit_.value.code == 0 and "usage: adq " + name in capsys.readouterr().out, name

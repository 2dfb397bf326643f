"""Warm routing on real workers (Redis, PostgreSQL, S3): a preset's group has queues of its own, a worker started
with --presets takes only its group's jobs, a kill -9 of one loses none of them, and a preset whose group no live
worker serves is refused at submit with a 409 that names the command that would serve it. Each worker warms the
presets it serves before it reports ready."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from adq.core.errors import PresetNotServed
from adq.jobs.db import calibrations, jobs
from adq.method.presets import student_settings
from adq.tasks import client
from tests import factories
from tests.helpers import configured
from tests.plugins.safety import NULL_ENTRY

PRESETS = "".join(
    f"{name}:{NULL_ENTRY}  group: {group}\n" for name, group in [("a", "alpha"), ("b", "beta"), ("c", "gamma")]
)
QUICK = {
    "ADQ_STUDENT_TIME_LIMIT_S": "10",
    "ADQ_TEACHER_TIME_LIMIT_S": "10",
    "ADQ_VISIBILITY_TIMEOUT_S": "12",
    "ADQ_RETRY_BACKOFF_MAX_S": "2",
    "ADQ_PRESET": "a",
    "ADQ_NULL_TEACHER_MS": "1500",  # long enough to kill a teacher inside a job
    "ADQ_WARM_UP": "before_ready",  # the default, which the other e2e tests trade for quicker starts
}


def test_each_groups_workers_take_only_its_jobs_and_a_kill_loses_none(system, tmp_path):
    from adq.gateway.app import create_app

    presets = tmp_path / "presets.yaml"
    presets.write_text(PRESETS)
    env = {"ADQ_PRESETS_FILE": str(presets), **QUICK}
    with configured(**env):
        for name in "abc":
            settings = student_settings(name, 1, 0.0, 8, 8)
            calibrations.record(settings, factories.percentiles(), n_samples=101, source="test")
        # One student worker for every queue (the default), one teacher worker per group; none serves gamma's.
        system.workers("student", **env)
        system.worker("teacher", name="teacher-alpha", args=["--presets", "a"], **env)
        b_worker = system.worker("teacher", name="teacher-beta", args=["--presets", "b"], **env)
        log = (system.log_dir / "teacher-alpha.log").read_text()
        warmed = log.find("warmed a's teacher")  # its preset, loaded before it consumes
        assert 0 <= warmed < log.find(" ready."), log[-2000:]

        api = TestClient(create_app())
        refused = api.post("/v1/jobs", json={"prompt": "a fox", "preset": "c"})
        assert refused.status_code == 409, refused.text
        assert "teacher.gamma" in refused.text and "adq worker teacher --presets c" in refused.text
        with pytest.raises(PresetNotServed):
            client.submit("a fox", preset="c")

        views = [client.submit(f"a fox {i}", preset=p, k=100, seed=i) for i in range(4) for p in "ab"]
        deadline = time.monotonic() + 60
        while not any(jobs.get(v.id).status == "teacher_running" for v in views if v.preset == "b"):
            assert time.monotonic() < deadline, "no beta job reached its teacher"
            time.sleep(0.05)
        b_worker.kill()  # SIGKILL inside a beta job: its message goes back to teacher.beta
        system.worker("teacher", name="teacher-beta-2", args=["--presets", "b"], **env)
        done = [client.wait(v.id, timeout=120) for v in views]

    assert all(d.status == "succeeded" and d.teacher_used for d in done), [d.error for d in done]
    for view in views:
        row = jobs.get(view.id)
        mine = "teacher-alpha@" if view.preset == "a" else "teacher-beta"
        assert row.teacher_worker.startswith(mine), (view.preset, row.teacher_worker)
        assert row.final_image_key and row.teacher_attempts in (1, 2)
    assert any(jobs.get(v.id).teacher_attempts == 2 for v in views if v.preset == "b"), "the kill hit no job"

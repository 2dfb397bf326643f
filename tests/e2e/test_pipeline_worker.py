"""A researcher's AdaptiveDiffusionPipeline object, served by real worker processes (adq worker --pipeline) on
Redis, PostgreSQL and S3, reached by its preset name from the Python client and from the gateway."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from adq.jobs.db import jobs
from adq.jobs.storage import decode_png, get_storage
from adq.tasks import client
from tests.plugins.pipelines import NAME

PIPELINE = ["--pipeline", "tests.plugins.pipelines:paper_tiny"]


def test_workers_serve_a_pipeline_object_by_the_name_it_declares(system):
    from adq.gateway.app import create_app

    student, teacher = system.workers("student", "teacher", args=PIPELINE, ADQ_PRESET=NAME)
    assert f"as preset '{NAME}'" in student.log_path.read_text() and "calibration" in teacher.log_path.read_text()

    # This process never built the object: the preset comes from the workers' declaration in the database.
    refined = client.wait(client.submit("a red fox in snow", preset=NAME, k=100, seed=5).id, timeout=180)
    regen = client.wait(
        client.submit("a red fox in snow", preset=NAME, k=100, seed=5, strategy="regenerate").id, timeout=180
    )
    kept = client.wait(client.submit("a red fox in snow", preset=NAME, k=0, seed=5).id, timeout=180)
    for view in (refined, regen, kept):
        assert view.status == "succeeded", view.error
    row = jobs.get(refined.id)
    assert row.preset == NAME and row.teacher_used and row.student_steps_run == 2 and row.teacher_steps_run == 3
    assert jobs.get(regen.id).teacher_steps_run == 3 and not jobs.get(kept.id).teacher_used
    assert row.calibration_id is not None  # the object's percentiles, recorded by the worker
    store = get_storage()
    final, first = (decode_png(store.get(k)) for k in (row.final_image_key, row.student_image_key))
    assert final.size == first.size == (32, 32) and not np.array_equal(np.asarray(final), np.asarray(first))

    api = TestClient(create_app())
    answer = api.post("/v1/jobs", json={"prompt": "a blue heron", "preset": NAME, "k": 100, "seed": 9})
    assert answer.status_code in (200, 201, 202), answer.text
    done = client.wait(answer.json()["id"], timeout=180)
    assert done.status == "succeeded" and done.teacher_used
    refused = api.post("/v1/jobs", json={"prompt": "a blue heron", "preset": "no-such-preset"})
    assert refused.status_code == 422 and "no-such-preset" in refused.text

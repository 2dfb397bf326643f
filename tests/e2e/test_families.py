"""Every family twin through real student and teacher worker processes on Redis, PostgreSQL and S3 (moto), on
refine and on regenerate. One worker pair serves every family: a job names its preset, and a worker loads each
preset's models on first use (the twins are built once, in the workers' home, on that first use)."""

from __future__ import annotations

import numpy as np

from shared.jobs.db import jobs
from shared.jobs.storage import decode_png, get_storage
from shared.method.presets import get_preset
from tasks import client

FAMILIES = ["tiny-sd15", "tiny-sd3", "tiny-flux", "tiny-zimage", "tiny-sd15-lora"]


def test_every_family_twin_refines_and_regenerates_on_real_workers(system):
    system.worker("student")
    system.worker("teacher")
    submitted = []
    for i, preset in enumerate(FAMILIES):
        for strategy in ("refine", "regenerate"):
            view = client.submit(f"a small red boat {i}", preset=preset, k=100, seed=100 + i, strategy=strategy)
            submitted.append((preset, strategy, view.id))
    store = get_storage()
    for preset, strategy, job_id in submitted:
        view = client.wait(job_id, timeout=300)
        assert view.status == "succeeded", (preset, strategy, view.error)
        p = get_preset(preset)
        row = jobs.get(job_id)
        assert row.teacher_used and row.strategy == strategy, (preset, strategy)
        assert row.student_steps_run == p.student_steps, (preset, row.student_steps_run)
        assert row.teacher_steps_run == p.teacher_steps, (preset, strategy, row.teacher_steps_run)
        final = decode_png(store.get(row.final_image_key))
        student = decode_png(store.get(row.student_image_key))
        assert final.size == tuple(p.teacher_size) and student.size == tuple(p.student_size)
        assert not np.array_equal(np.asarray(final), np.asarray(student)), (preset, strategy)

"""Every family twin through real student and teacher worker processes on Redis, PostgreSQL and S3 (moto), on
refine and on regenerate. One worker pair serves every family: a job names its preset, and a worker loads each
preset's models on first use (the twins are built once, in the workers' home, on that first use)."""

from __future__ import annotations

import numpy as np

from adq.jobs.db import jobs
from adq.jobs.storage import decode_png, get_storage
from adq.method.presets import get_preset
from adq.tasks import client

FAMILIES = ["tiny-sd15", "tiny-sd3", "tiny-flux", "tiny-zimage", "tiny-sd15-lora"]
# Image inputs (issue 22) on the SDXL twin and the SD1.5 twin: image-to-image, ControlNet, and both
MODES = {
    "image2image": {"init_image": "input"},
    "control": {"control_image": "control"},
    "image2image+control": {"init_image": "input", "control_image": "control"},
}


def _png(colour, size=(40, 40)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _calibrate_modes(tmp_path, presets) -> dict:
    """Each mode is calibrated on its own: a few prompts per preset and mode, in this process."""
    from adq.control.calibrate import calibrate

    files = {"input": tmp_path / "input.png", "control": tmp_path / "control.png"}
    files["input"].write_bytes(_png((20, 40, 200)))
    files["control"].write_bytes(_png((255, 255, 255), (32, 32)))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"a small red boat {i}" for i in range(6)))
    for preset in presets:
        for fields in MODES.values():
            chosen = {("image" if f == "init_image" else "control"): files[v] for f, v in fields.items()}
            calibrate(prompts, preset=preset, n_samples=6, progress=False, **chosen)
    return files


def test_every_family_twin_refines_and_regenerates_on_real_workers(system, tmp_path):
    files = _calibrate_modes(tmp_path, ["tiny", "tiny-sd15"])
    system.workers("student", "teacher")
    from adq.cli.backend import Local

    moded = []
    for preset in ("tiny", "tiny-sd15"):
        for mode, fields in MODES.items():
            for strategy in ("refine", "regenerate"):
                given = {f: str(files[v]) for f, v in fields.items()}  # files: uploaded first, as the CLI does
                view = Local().submit("a small red boat 1", preset=preset, k=100, seed=7, strategy=strategy, **given)
                moded.append((preset, mode, strategy, view.id))
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
    for preset, mode, strategy, job_id in moded:
        view = client.wait(job_id, timeout=300)
        assert view.status == "succeeded", (preset, mode, strategy, view.error)
        row = jobs.get(job_id)
        p = get_preset(preset)
        assert row.teacher_used and view.mode == mode and row.calibration_id is not None, (preset, mode)
        assert row.student_steps_run == p.student_steps and row.teacher_steps_run == p.teacher_steps, (preset, mode)
        assert decode_png(store.get(row.final_image_key)).size == tuple(p.teacher_size)

"""The stage library and the base task in this process, with no worker: ``adq.jobs.runner`` on the inline lane
with the null preset (its models cost nothing, its estimator scores in [0, 1)), and ``StageTask`` through
``task.apply``. Each branch of a stage's run is covered: route, outage, crash, cancel and duplicate.

The factories' calibration spans [-1, 1], so k = 100 puts tau at 1 (every null score is below: the teacher) and
k = 0 puts it at -1 (none is: finish)."""

from __future__ import annotations

import time

import pytest

from adq.core.errors import Interrupted, StorageUnavailable
from adq.core.status import JobStatus, Route
from adq.jobs import runner
from adq.jobs.db import jobs
from adq.jobs.holders import Claimant
from adq.jobs.stage import STUDENT, TEACHER
from adq.jobs.storage import get_storage
from adq.method import cancel
from adq.method.models import registry
from tests import factories
from tests.helpers import configured, stored

ME = Claimant("test@here/1")


@pytest.fixture()
def inline(sqlite_env):
    """The worker context of the serial design: its inline lane runs model calls on the caller's thread."""
    from adq import context

    with configured(ADQ_WORKER_DESIGN="serial", ADQ_PRESET="null"):
        yield context.current()


def _job(k: int):
    return factories.job(preset="null", k=k)


def test_student_routes_to_the_teacher_below_tau_and_finishes_above(inline):
    low, high = _job(k=100), _job(k=0)
    to_teacher = runner.run(STUDENT, low.id, ME, inline)
    assert to_teacher.route is Route.TEACHER and to_teacher.job.status is JobStatus.TEACHER_QUEUED
    assert to_teacher.job.tau == pytest.approx(1.0) and to_teacher.job.tau_source == "calibration"
    assert stored(get_storage(), to_teacher.job.student_image_key)

    done = runner.run(STUDENT, high.id, ME, inline)
    assert done.route is Route.FINISH and done.finished and done.job.status is JobStatus.SUCCEEDED
    assert done.job.final_image_key == done.job.student_image_key  # the student's image is the final one

    final = runner.run(TEACHER, low.id, ME, inline)
    assert final.finished and final.job.teacher_used and final.job.final_image_key != final.job.student_image_key


def test_an_outage_gives_the_claim_back_uncounted_and_the_retry_succeeds(inline, monkeypatch):
    job = _job(k=0)
    storage = get_storage()
    real_put = storage.put

    def down(key, data, content_type="image/png"):
        raise StorageUnavailable("S3 is out")

    monkeypatch.setattr(storage, "put", down)
    with pytest.raises(Interrupted) as raised:
        runner.run(STUDENT, job.id, ME, inline)
    assert raised.value.fence is None  # released: the retry claims afresh
    row = jobs.get(job.id)
    assert row.status is JobStatus.QUEUED and row.student_attempts == 0 and "S3 is out" in row.last_transient_error

    monkeypatch.setattr(storage, "put", real_put)
    assert runner.run(STUDENT, job.id, ME, inline).job.status is JobStatus.SUCCEEDED
    assert jobs.get(job.id).student_attempts == 1  # the outage's claim was given back, not counted as a crash


def test_a_crash_propagates_and_keeps_the_claim_until_its_holder_is_gone(inline, monkeypatch):
    job = _job(k=0)

    class Broken:
        def generate(self, *args, **kwargs):
            raise RuntimeError("CUDA error: an illegal memory access")

    monkeypatch.setattr(registry, "student", lambda preset: Broken())
    with pytest.raises(RuntimeError, match="illegal memory access"):
        runner.run(STUDENT, job.id, ME, inline)
    assert jobs.get(job.id).status is JobStatus.STUDENT_RUNNING  # held: the lease, or the task, decides

    monkeypatch.undo()
    assert runner.run(STUDENT, job.id, Claimant("other@here/2"), inline) is runner.SKIPPED  # a live holder is trusted
    taken = runner.run(STUDENT, job.id, Claimant("other@here/2", holder_gone=lambda holder: True), inline)
    assert taken.job.status is JobStatus.SUCCEEDED and taken.job.student_attempts == 2


def test_a_cancel_stops_the_model_between_steps_and_a_cancelled_job_is_skipped(inline, monkeypatch):
    from adq.jobs import records

    job = _job(k=0)
    real = registry.student("null")

    class CancelledMidway:
        def generate(self, *args, **kwargs):
            records.cancel(job.id)  # the user cancels while step 1 runs
            cancel.step_done(1)  # the adapter's per-step check sees it
            return real.generate(*args, **kwargs)

    monkeypatch.setattr(registry, "student", lambda preset: CancelledMidway())
    assert runner.run(STUDENT, job.id, ME, inline) is runner.SKIPPED
    row = jobs.get(job.id)
    assert row.status is JobStatus.CANCELLED and row.student_image_key is None

    monkeypatch.undo()
    assert runner.run(STUDENT, job.id, ME, inline) is runner.SKIPPED  # a message for it arriving later does nothing


def test_a_duplicate_message_does_nothing(inline):
    job = _job(k=0)
    first = runner.run(STUDENT, job.id, ME, inline)
    assert first.finished
    assert runner.run(STUDENT, job.id, ME, inline) is runner.SKIPPED
    assert runner.run(TEACHER, job.id, ME, inline) is runner.SKIPPED  # no teacher stage for a finished job
    assert jobs.get(job.id).student_attempts == 1


# -- the base task, through task.apply (Celery runs it eagerly, in this thread) ---------------------------------


@pytest.fixture()
def tasks_inline(inline):
    from adq.tasks import stages

    return stages


def test_the_task_routes_and_sends_the_teacher_message(tasks_inline, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "adq.tasks.base.send_stage", lambda stage, job_id, priority, preset: sent.append((stage, job_id))
    )
    finish, teach = _job(k=0), _job(k=100)
    assert tasks_inline.student.apply(args=[finish.id]).get() == "succeeded"
    assert tasks_inline.student.apply(args=[teach.id]).get() == "teacher"
    assert sent == [(TEACHER, teach.id)]
    assert tasks_inline.teacher.apply(args=[teach.id]).get() == "succeeded"


def test_the_task_waits_out_an_outage_then_succeeds(tasks_inline, monkeypatch):
    job = _job(k=0)
    storage = get_storage()
    real_put, calls = storage.put, []

    def flaky(key, data, content_type="image/png"):
        calls.append(key)
        if len(calls) == 1:
            raise StorageUnavailable("S3 is out")
        return real_put(key, data)

    monkeypatch.setattr(storage, "put", flaky)
    monkeypatch.setattr("adq.tasks.base.full_jitter", lambda retries: 0.0)
    assert tasks_inline.student.apply(args=[job.id]).get() == "succeeded"
    row = jobs.get(job.id)
    assert row.transient_retries == 1 and row.student_attempts == 1


def test_the_task_fails_the_job_once_the_outage_outlasts_its_budget(tasks_inline, monkeypatch):
    job = _job(k=0)
    monkeypatch.setattr(get_storage(), "put", lambda key, data, *_: (_ for _ in ()).throw(StorageUnavailable("out")))
    assert tasks_inline.student.apply(args=[job.id], kwargs={"outage_since": 1.0}).get() == "failed"
    row = jobs.get(job.id)
    assert row.status is JobStatus.FAILED and "ADQ_TRANSIENT_RETRY_FOR_S" in row.error


def test_the_task_fails_a_crashing_job_and_skips_a_cancelled_or_duplicate_one(tasks_inline, monkeypatch):
    from adq.jobs import records

    crash, cancelled, dup = _job(k=0), _job(k=0), _job(k=0)

    class Broken:
        def generate(self, *args, **kwargs):
            raise ValueError("bad latent shape")

    with monkeypatch.context() as m:
        m.setattr(registry, "student", lambda preset: Broken())
        assert tasks_inline.student.apply(args=[crash.id]).get() == "failed"
    assert "bad latent shape" in jobs.get(crash.id).error

    records.cancel(cancelled.id)
    assert tasks_inline.student.apply(args=[cancelled.id]).get() == "skipped"
    assert tasks_inline.student.apply(args=[dup.id]).get() == "succeeded"
    assert tasks_inline.student.apply(args=[dup.id]).get() == "skipped"


def test_a_superseded_attempt_never_writes_over_the_live_attempts_image(inline, monkeypatch):
    """A worker whose claim was taken over (its holder looked gone) still finishes its model call: its image goes
    beside the live attempt's, its fenced record fails, and the row names the live attempt's image."""
    job = _job(k=0)
    stale = jobs.claim(job.id, STUDENT, Claimant("old@host/1"))
    live = runner.run(STUDENT, job.id, Claimant("new@host/2", holder_gone=lambda _h: True), inline)
    assert live.job.status is JobStatus.SUCCEEDED
    recorded = get_storage().get(live.job.student_image_key)

    storage, writes = get_storage(), []
    real_put = storage.put
    monkeypatch.setattr(storage, "put", lambda key, data, *_: (writes.append(key), real_put(key, b"stale bytes")))
    assert runner.student(stale, inline) is runner.SKIPPED  # the stale attempt finishes late: its record fails
    assert writes and writes[0] != live.job.student_image_key
    assert get_storage().get(jobs.get(job.id).student_image_key) == recorded


@pytest.fixture()
def overlapped(sqlite_env):
    """The overlapped design's context: task threads share one model lane, which batches same-settings calls."""
    from adq import context

    with configured(ADQ_WORKER_DESIGN="overlapped", ADQ_PRESET="null"):
        ctx = context.current()
        yield ctx
        ctx.lane.stop()


def _in_one_batch(ctx, stage, ids, during_batch):
    """Run ``stage`` for ``ids`` on threads whose model calls meet in one batch; ``during_batch(items)`` runs
    inside the batch's model call."""
    import threading

    from adq.method.models import registry

    real_student, real_teacher = registry.student("null"), registry.teacher("null")
    gate = threading.Event()

    class Gathered:  # holds each job's call until all have queued, so they share one batch
        def generate_batch(self, prompts, seeds, **kw):
            during_batch(seeds)
            return real_student.generate_batch(prompts, seeds, **kw)

        def __getattr__(self, name):
            return getattr(real_student, name)

    class GatheredTeacher:
        def refine_batch(self, images, prompts, seeds, **kw):
            during_batch(seeds)
            return [real_teacher.refine(im, p, seed=s, **kw) for im, p, s in zip(images, prompts, seeds)]

        def __getattr__(self, name):
            return getattr(real_teacher, name)

    results = {}
    lane = ctx.lane
    lane.submit(("hold",), lambda items: gate.wait(10) and items, None)  # the lane waits until all have queued

    def one(job_id):
        results[job_id] = runner.run(stage, job_id, Claimant(f"t@here/{job_id[:4]}"), ctx)

    threads = [threading.Thread(target=one, args=(i,)) for i in ids]
    registry_student, registry_teacher = registry.student, registry.teacher
    registry.student, registry.teacher = (lambda preset: Gathered()), (lambda preset: GatheredTeacher())
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len([c for c in lane._pending if c.key[0] in ("generate", "improve")]) < len(ids):
            assert time.monotonic() < deadline, "the jobs never queued together"
            time.sleep(0.01)
        gate.set()
        for t in threads:
            t.join(30)
    finally:
        registry.student, registry.teacher = registry_student, registry_teacher
    return results


def test_a_cancel_in_a_batch_drops_that_jobs_result_and_its_neighbours_finish(overlapped):
    from adq.jobs import records

    a, b, c = _job(k=0), _job(k=0), _job(k=0)
    seed_of = {jobs.get(j.id).seed: j.id for j in (a, b, c)}
    out = _in_one_batch(overlapped, STUDENT, [a.id, b.id, c.id], lambda seeds: records.cancel(seed_of[seeds[1]]))
    rows = {i: jobs.get(i) for i in (a.id, b.id, c.id)}
    cancelled = [i for i, r in rows.items() if r.status is JobStatus.CANCELLED]
    assert len(cancelled) == 1 and rows[cancelled[0]].student_image_key is None  # its result was dropped
    assert out[cancelled[0]] is runner.SKIPPED
    done = [r for r in rows.values() if r.status is JobStatus.SUCCEEDED]
    assert len(done) == 2 and all(r.student_batch == 3 for r in done)  # they ran in one batch, and say so


def test_teacher_jobs_with_the_same_settings_share_a_batch_and_record_it(overlapped):
    ids = []
    for _ in range(3):
        j = _job(k=100)
        assert runner.run(STUDENT, j.id, ME, overlapped).route is Route.TEACHER
        ids.append(j.id)
    _in_one_batch(overlapped, TEACHER, ids, lambda seeds: None)
    rows = [jobs.get(i) for i in ids]
    assert all(r.status is JobStatus.SUCCEEDED and r.teacher_batch == 3 for r in rows), rows


def test_deterministic_runs_every_job_alone():
    from adq.context import _batch_limits

    with configured(ADQ_PRESET="null"):
        assert _batch_limits(("generate", "null", "h"))[0] == 8 and _batch_limits(("improve", "null", "h"))[0] == 4
        with configured(ADQ_DETERMINISTIC="true"):
            assert _batch_limits(("generate", "null", "h"))[0] == 1 and _batch_limits(("improve", "null", "h"))[0] == 1
        with configured(ADQ_STUDENT_BATCH_MAX="2"):
            assert _batch_limits(("generate", "null", "h"))[0] == 2


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_the_final_image_is_stored_in_the_jobs_output_format_and_the_student_image_stays_png(inline, fmt):
    import io

    from PIL import Image

    kept, improved = (factories.job(preset="null", k=k, output_format=fmt, output_quality=60) for k in (0, 100))
    done = runner.run(STUDENT, kept.id, ME, inline)
    runner.run(STUDENT, improved.id, ME, inline)
    final = runner.run(TEACHER, improved.id, ME, inline)
    store = get_storage()
    for row in (done.job, final.job):
        assert row.output_format == fmt and row.final_image_key != row.student_image_key
        assert row.final_image_key.endswith(".jpg" if fmt == "jpeg" else ".webp")
        assert Image.open(io.BytesIO(store.get(row.final_image_key))).format == fmt.upper()
        assert Image.open(io.BytesIO(store.get(row.student_image_key))).format == "PNG"
    png = runner.run(STUDENT, factories.job(preset="null", k=0).id, ME, inline).job
    assert png.output_format == "png" and png.final_image_key == png.student_image_key


def test_the_safety_filter_withholds_a_flagged_final_image_from_either_stage(sqlite_env, tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from adq import context
    from tests.plugins.safety import PRESETS

    presets = tmp_path / "presets.yaml"
    presets.write_text(PRESETS)
    with configured(ADQ_WORKER_DESIGN="serial", ADQ_PRESET="null", ADQ_PRESETS_FILE=str(presets)):
        ctx, store = context.current(), get_storage()
        rows = {}
        for name, seed, k in (("student", 6, 0), ("teacher", 1, 100), ("clean", 1, 0)):
            job = factories.job(preset="null-safe", k=k, seed=seed)
            out = runner.run(STUDENT, job.id, ME, ctx)
            rows[name] = runner.run(TEACHER, job.id, ME, ctx).job if k else out.job
    for name in ("student", "teacher"):
        row = rows[name]
        assert row.nsfw is True and row.safety_filter == "tests.plugins.safety:red_filter", name
        final = np.asarray(Image.open(io.BytesIO(store.get(row.final_image_key))))
        assert final.max() == 0 and row.final_image_key != row.student_image_key  # a black placeholder
    clean = rows["clean"]
    assert clean.nsfw is False and clean.final_image_key == clean.student_image_key
    unfiltered = runner.run(STUDENT, _job(k=0).id, ME, ctx).job  # a preset with no filter: nothing recorded
    assert unfiltered.nsfw is None and unfiltered.safety_filter is None

"""`adq bench batching`: what batching the student buys on a GPU's cost curve, side by side in one run.

The null preset spends a shipped batch curve (ADQ_NULL_STUDENT_CURVE: a + c·b seconds for a batch of b, a sleep
standing in for GPU time) through real worker processes on Redis, PostgreSQL and an S3 server. The student pool
runs the same jobs one image a call and then up to ``batch`` a call (ADQ_STUDENT_BATCH_MAX, with twice as many task
threads so a batch can form while the last one runs). Reported per run: jobs/s in steady state, the share of wall
time the "GPU" was busy (the model seconds the jobs recorded, each its share of its batch's), and the ratio, beside
the curve's own bound b·cost(1)/cost(b).

In the same run, on the real models of this machine (the shapes world's and the tiny twins, on the CPU): student,
refinement and regeneration images/s one at a time against batches of ``batch``, with the largest pixel difference
between a batched image and its single run."""

from __future__ import annotations

import time

from adq.core.config import get_settings
from adq.core.errors import InputError
from adq.jobs.runner import _generate
from adq.method import cascade
from adq.method.cost import curve as batch_curve
from adq.method.models import registry
from adq.method.params import JobParams
from bench.efficiency import WARM, _submit, _wait, s3_server
from bench.overhead import write_json


def _pool(env: dict, log_dir, n_jobs: int, tag: str) -> dict:
    import os

    from adq.workers.processes import WorkerProcess

    student = WorkerProcess("student", log_dir, env={**os.environ, **env}, name=f"batching-{tag}")
    student.wait_ready()
    try:
        rows = _wait(_submit(n_jobs, 0, f"batching {tag}"), "succeeded", student)
    finally:
        student.stop()
    rows = sorted(rows, key=lambda r: r.student_finished_at)
    t0, tail = rows[WARM - 1].student_finished_at, rows[WARM:]
    wall = (tail[-1].student_finished_at - t0).total_seconds()
    return {
        "jobs": len(tail),
        "wall_s": wall,
        "jobs_per_s": len(tail) / wall,
        "busy_fraction": sum(r.generate_s or 0 for r in tail) / wall,
    }


def models(presets=("shapes", "tiny"), n: int = 8, batch: int = 4) -> list[dict]:
    import numpy as np

    from adq.jobs.records import record
    from adq.method.shapes.world import prompts as shapes_prompts

    out = []
    for preset in presets:
        texts = shapes_prompts("val", n)  # in the shapes grammar, which the tiny models take as well
        for strategy in ("refine", "regenerate"):
            params = [JobParams.of(record(t, preset=preset, seed=i, strategy=strategy)[0]) for i, t in enumerate(texts)]
            warm = _students(preset, params[:batch], batch)  # models loaded, batch shapes seen: neither side pays it
            _teachers(preset, list(zip(params[:batch], warm)), batch)
            one, s_one = _timed(_students, preset, params, 1)
            many, s_many = _timed(_students, preset, params, batch)
            pairs = list(zip(params, one))
            alone, t_one = _timed(_teachers, preset, pairs, 1)
            together, t_many = _timed(_teachers, preset, pairs, batch)
            row = {"preset": preset, "batch": batch, "images": n, "teacher_strategy": strategy}
            if strategy == "refine":
                row |= {"student_speedup": s_one / s_many, "student_max_pixel_diff": _diff(np, one, many)}
            row |= {"teacher_speedup": t_one / t_many, "teacher_max_pixel_diff": _diff(np, alone, together)}
            out.append(row)
    return out


def _timed(fn, *args):
    t0 = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - t0


def _students(preset: str, params: list, size: int) -> list:
    if size == 1:
        return [cascade.generate(registry.student(preset), p).image for p in params]
    chunks = [params[i : i + size] for i in range(0, len(params), size)]
    return [r.image for c in chunks for r in _generate(registry, preset, None, cascade.NO_INPUTS, c)]


def _teachers(preset: str, pairs: list, size: int) -> list:
    teacher = registry.teacher(preset)
    if size == 1:
        return [cascade.improve(teacher, image, p).image for p, image in pairs]
    chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
    return [r.image for c in chunks for r in cascade.improve_batch(teacher, c)]


def _diff(np, a: list, b: list) -> int:
    return max(int(np.abs(np.asarray(x, int) - np.asarray(y, int)).max()) for x, y in zip(a, b))


def run(curve: str = "sd-turbo-512", batch: int = 8, n_jobs: int = 400, side: int = 64, out: str | None = None):
    from adq.jobs.db.migrate import upgrade

    s = get_settings()
    if s.broker_kind != "redis" or not s.effective_database_url.startswith("postgresql"):
        raise InputError("the batching benchmark needs Redis and PostgreSQL: set ADQ_BROKER_URL and ADQ_DATABASE_URL")
    if n_jobs <= WARM + 2 * batch:
        raise InputError(f"--jobs must exceed {WARM + 2 * batch} (the first {WARM} warm up)")
    cost = batch_curve(curve)
    upgrade()
    log_dir = s.home_dir / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    model = {"ADQ_PRESET": "null", "ADQ_NULL_STUDENT_CURVE": curve, "ADQ_NULL_STUDENT_SIDE": str(side)}
    rows = []
    with s3_server(log_dir) as s3:
        for b in (1, batch):
            env = {**model, **s3, "ADQ_WORKER_DESIGN": "overlapped", "ADQ_STUDENT_BATCH_MAX": str(b)}
            env["ADQ_WORKER_THREADS"] = str(max(4, 3 * b))
            rows.append({"batch": b, "curve_jobs_per_s": b / cost.seconds(b), **_pool(env, log_dir, n_jobs, str(b))})
    ratio = rows[1]["jobs_per_s"] / rows[0]["jobs_per_s"]
    result = {"curve": curve, "curve_source": cost.source, "side": side, "rows": rows, "models": models()}
    result |= {"speedup": ratio, "curve_bound": cost.speedup(batch)}
    for r in rows:
        print(
            f"batch {r['batch']:>2}: {r['jobs_per_s']:6.2f} jobs/s (the curve's ideal {r['curve_jobs_per_s']:6.2f}), "
            f"GPU busy {r['busy_fraction']:.3f}"
        )
    print(f"batch {batch} over batch 1: {ratio:.2f}x (the curve's bound {cost.speedup(batch):.2f}x)")
    for m in result["models"]:
        student = f"student {m['student_speedup']:.2f}x, " if "student_speedup" in m else ""
        print(
            f"  {m['preset']:<7} in batches of {m['batch']} on this CPU: {student}teacher {m['teacher_strategy']} "
            f"{m['teacher_speedup']:.2f}x images/s, at most {m['teacher_max_pixel_diff']}/255 from single runs"
        )
    write_json(out, result)
    return result

"""`adq bench batching`: what batching the student buys on a GPU's cost curve, side by side in one run.

The null preset spends a shipped batch curve (ADQ_NULL_STUDENT_CURVE: a + c·b seconds for a batch of b, a sleep
standing in for GPU time) through real worker processes on Redis, PostgreSQL and an S3 server. The student pool
runs the same jobs one image a call and then up to ``batch`` a call (ADQ_STUDENT_BATCH_MAX, with twice as many task
threads so a batch can form while the last one runs). Reported per run: jobs/s in steady state, the share of wall
time the "GPU" was busy (the model seconds the jobs recorded, each its share of its batch's), and the ratio, beside
the curve's own bound b·cost(1)/cost(b)."""

from __future__ import annotations

from adq.core.config import get_settings
from adq.core.errors import InputError
from adq.method.cost import curve as batch_curve
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
    result = {"curve": curve, "curve_source": cost.source, "side": side, "rows": rows}
    result |= {"speedup": ratio, "curve_bound": cost.speedup(batch)}
    for r in rows:
        print(
            f"batch {r['batch']:>2}: {r['jobs_per_s']:6.2f} jobs/s (the curve's ideal {r['curve_jobs_per_s']:6.2f}), "
            f"GPU busy {r['busy_fraction']:.3f}"
        )
    print(f"batch {batch} over batch 1: {ratio:.2f}x (the curve's bound {cost.speedup(batch):.2f}x)")
    write_json(out, result)
    return result

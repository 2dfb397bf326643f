"""`adq bench efficiency`: how much of a worker's wall time its model runs, serial and overlapped, side by side.

The model is the null preset at a fixed cost per image (a sleep stands in for GPU time, so the CPU is free
meanwhile, as it is while a GPU computes) making textured images that encode like real ones. Jobs run on real
Redis, PostgreSQL and an S3 server (moto's server mode, started here unless ADQ_S3_ENDPOINT_URL is set), through
real worker processes, one per pool. Each pool is measured alone, in steady state (``steady``).

Also measured in the same run: the lossless encodings we could store (``encodings``), and what batching scores
gives the trained and tiny estimators in one process (``scoring``; the models' batching is `adq bench batching`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from adq.core.config import get_settings
from adq.core.errors import InputError
from adq.jobs.db import jobs
from bench.overhead import write_json

WARM = 24  # finishes left out: more than the jobs in flight at start (12 student threads)
DESIGNS = ("serial", "overlapped")


def _wait(ids: list[str], status: str, worker, timeout: float = 900) -> list:
    """One small query a second (not one per job): the poller must not take CPU from what it measures."""
    from sqlalchemy import func, select

    from adq.jobs.db.models import Job
    from adq.jobs.db.session import session_scope

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as s:
            counts = dict(s.execute(select(Job.status, func.count()).where(Job.id.in_(ids)).group_by(Job.status)).all())
        if counts.get(status, 0) == len(ids):
            return [jobs.get(i) for i in ids]
        if counts.get("failed") or counts.get("cancelled"):
            bad = next(r for r in map(jobs.get, ids) if r.status in ("failed", "cancelled"))
            raise RuntimeError(f"benchmark job {bad.id} {bad.status}: {bad.error}")
        worker.check()
        time.sleep(1.0)
    raise TimeoutError(f"benchmark jobs did not all reach {status} in {timeout} s")


def steady(rows: list, finished: str, model_s, model_ms: float) -> dict:
    """Throughput in steady state: jobs finished per second between the WARM-th finish and the last (more than the
    jobs a worker starts with in flight, whose finishes come in a burst). Busy is jobs/s times the model's fixed
    cost: the seconds recorded around each call also include its wake-up, so summing them over-counts."""
    rows = sorted(rows, key=lambda r: getattr(r, finished))
    t0, tail = getattr(rows[WARM - 1], finished), rows[WARM:]
    wall = (getattr(tail[-1], finished) - t0).total_seconds()
    rate = len(tail) / wall
    return {
        "jobs": len(tail),
        "wall_s": wall,
        "jobs_per_s": rate,
        "busy_fraction": rate * model_ms / 1000,
        "recorded_model_ms_per_job": 1000 * sum(model_s(r) for r in tail) / len(tail),
    }


@contextmanager
def s3_server(log_dir: Path):
    """An S3 endpoint and a fresh bucket: moto's server in a child process, unless one is configured."""
    import boto3

    endpoint = get_settings().s3_endpoint_url
    proc, creds = None, {}
    if not endpoint:
        # moto takes any credentials; boto3 only needs some to sign with.
        creds = {k: os.environ.get(k, "bench") for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        os.environ.update(creds)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = open(log_dir / "moto.log", "wb")
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
    bucket = f"adq-bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name=get_settings().s3_region).create_bucket(Bucket=bucket)
    try:
        yield {"ADQ_S3_ENDPOINT_URL": endpoint, "ADQ_STORAGE_URL": f"s3://{bucket}/bench", **creds}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


def _submit(n: int, k: int, tag: str) -> list[str]:
    from adq.tasks import client

    return [client.submit(f"efficiency {tag} {i}", preset="null", k=k, seed=i).id for i in range(n)]


def _pools(design: str, env: dict, log_dir: Path, n_student: int, n_teacher: int, ms: dict) -> list[dict]:
    from adq.workers.processes import WorkerProcess

    def worker(pool: str) -> WorkerProcess:
        w = WorkerProcess(pool, log_dir, env={**os.environ, **env}, name=f"eff-{design}-{pool}")
        w.wait_ready()
        return w

    # The student pool alone: k=0 keeps every job at the student.
    student = worker("student")
    try:
        rows = _wait(_submit(n_student, 0, f"{design} student"), "succeeded", student)
        # The teacher's jobs go through the student first, then wait while the student pool stops.
        handed = _wait(_submit(n_teacher, 100, f"{design} teacher"), "teacher_queued", student)
    finally:
        student.stop()
    s_row = steady(rows, "student_finished_at", lambda r: (r.generate_s or 0) + (r.score_s or 0), ms["student"])
    teacher = worker("teacher")
    try:
        done = _wait([r.id for r in handed], "succeeded", teacher)
    finally:
        teacher.stop()
    t_row = steady(done, "finished_at", lambda r: r.teacher_s or 0, ms["teacher"])
    return [{"pool": "student", **s_row}, {"pool": "teacher", **t_row}]


def encodings(sides: tuple[int, ...], repeats: int = 5) -> list[dict]:
    """Encode and decode times of the lossless candidates on textured images (checked lossless)."""
    import io

    import numpy as np
    from PIL import Image

    from adq.method.models.null import textured_image

    candidates = [("png", {"compress_level": lvl}) for lvl in (0, 1, 3, 6, 9)]
    candidates += [("webp", {"lossless": True, "method": 0, "quality": 0}), ("webp", {"lossless": True})]
    out = []
    for side in sides:
        image = textured_image(11, side)
        for fmt, opts in candidates:
            times, data = [], b""
            for _ in range(repeats):
                buf, t0 = io.BytesIO(), time.perf_counter()
                image.save(buf, format=fmt.upper(), **opts)
                times.append(time.perf_counter() - t0)
                data = buf.getvalue()
            t0 = time.perf_counter()
            back = Image.open(io.BytesIO(data))
            back.load()
            decode = time.perf_counter() - t0
            assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(image)), (fmt, opts)
            name = fmt + "".join(f" {k}={v}" for k, v in opts.items())
            out.append(
                {
                    "side": side,
                    "encoding": name,
                    "encode_ms": 1000 * float(np.median(times)),
                    "decode_ms": 1000 * decode,
                    "bytes_over_raw": len(data) / (side * side * 3),
                }
            )
    return out


def scoring(presets=("shapes", "tiny"), n: int = 8) -> list[dict]:
    """Scores/s one at a time against one estimator call for all ``n`` images, and how far the scores move. (Student
    and teacher batching are measured by `adq bench batching`, bench.batching.models.)"""
    from adq.jobs.records import record
    from adq.method import cascade
    from adq.method.models import registry
    from adq.method.params import JobParams
    from adq.method.shapes.world import prompts as shapes_prompts

    out = []
    for preset in presets:
        texts = shapes_prompts("val", n)  # in the shapes grammar, which the tiny models take as well
        params = [JobParams.of(record(t, preset=preset, seed=i)[0]) for i, t in enumerate(texts)]
        student, estimator = registry.student(preset), registry.estimator(preset)
        images = [cascade.generate(student, p).image for p in params]
        prompts = [p.prompt for p in params]
        estimator.score(prompts[:1], images[:1])  # warm
        t0 = time.perf_counter()
        s_one = [estimator.score([q], [im])[0] for q, im in zip(prompts, images)]
        score_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        s_all = estimator.score(prompts, images)
        score_all = time.perf_counter() - t0
        out.append(
            {
                "preset": preset,
                "score_batch": n,
                "score_speedup": score_one / score_all,
                "score_max_abs_diff": float(max(abs(a - b) for a, b in zip(s_one, s_all))),
            }
        )
    return out


def run(
    student_ms: float = 50,
    student_side: int = 512,
    teacher_ms: float = 200,
    teacher_side: int = 1024,
    n_student: int = 240,
    n_teacher: int = 60,
    out: str | None = None,
) -> dict:
    from adq.jobs.db.migrate import upgrade

    s = get_settings()
    if s.broker_kind != "redis" or not s.effective_database_url.startswith("postgresql"):
        raise InputError("the efficiency benchmark needs Redis and PostgreSQL: set ADQ_BROKER_URL and ADQ_DATABASE_URL")
    if min(n_student, n_teacher) <= WARM + 1:
        raise InputError(f"--student-jobs and --teacher-jobs must exceed {WARM + 1} (the first {WARM} warm up)")
    upgrade()
    log_dir = s.home_dir / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    model = {
        "ADQ_PRESET": "null",
        "ADQ_NULL_STUDENT_MS": str(student_ms),
        "ADQ_NULL_STUDENT_SIDE": str(student_side),
        "ADQ_NULL_TEACHER_MS": str(teacher_ms),
        "ADQ_NULL_TEACHER_SIDE": str(teacher_side),
    }
    rows = []
    with s3_server(log_dir) as s3:
        for design in DESIGNS:
            env = {**model, **s3, "ADQ_WORKER_DESIGN": design}
            for r in _pools(design, env, log_dir, n_student, n_teacher, {"student": student_ms, "teacher": teacher_ms}):
                ms, side = (student_ms, student_side) if r["pool"] == "student" else (teacher_ms, teacher_side)
                ideal = 1000 / ms if ms else float("inf")
                rows.append({"design": design, "model_ms": ms, "side": side, **r, "ideal_jobs_per_s": ideal})
    result = {"rows": rows, "encodings": encodings((student_side, teacher_side)), "scoring": scoring()}
    result["settings"] = {k: getattr(s, k) for k in ("worker_threads", "png_compress_level", "score_batch_max")}
    _print(result)
    write_json(out, result)
    return result


def _print(result: dict) -> None:
    print(f"{'design':<11} {'pool':<8} {'model':>7} {'side':>5} {'busy':>6} {'jobs/s':>7} {'ideal':>6} {'recorded':>9}")
    for r in result["rows"]:
        print(
            f"{r['design']:<11} {r['pool']:<8} {r['model_ms']:>5g}ms {r['side']:>5} {r['busy_fraction']:>6.3f} "
            f"{r['jobs_per_s']:>7.2f} {r['ideal_jobs_per_s']:>6.2f} {r['recorded_model_ms_per_job']:>7.1f}ms"
        )
    print("\nlossless encodings (median of 5):")
    for e in result["encodings"]:
        print(
            f"  {e['side']:>5}  {e['encoding']:<40} encode {e['encode_ms']:7.1f} ms  decode {e['decode_ms']:6.1f} "
            f"ms  {e['bytes_over_raw']:.3f} of raw"
        )
    print("\nscores in one call, in one process:")
    for b in result["scoring"]:
        print(
            f"  {b['preset']:<7} x{b['score_batch']}: {b['score_speedup']:.2f}x, "
            f"max |diff| {b['score_max_abs_diff']:.2e}"
        )

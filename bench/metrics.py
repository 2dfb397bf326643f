"""`adq bench metrics`: what one gateway /metrics scrape costs as the jobs table grows.

Fills a PostgreSQL database with copies of real job rows (finished, spread over 30 days, a few hundred still
live), then times scrapes: the way they are served now (worker-kept counts in Redis, and only index-bounded
reads from the table) beside the old way (aggregates over the whole table, kept as the no-Redis fallback), in the
same run, at each table size."""

from __future__ import annotations

import statistics
import time

from adq.core.config import get_settings
from adq.core.errors import InputError
from bench.overhead import write_json

LIVE_ROWS = 300  # jobs in flight during the scrapes: what the live-status counts read


def _fill(total: int) -> None:
    """Grow the jobs table to ``total`` rows, copying one real job (so every column is as the code writes it)."""
    from sqlalchemy import func, select, text

    from adq.jobs.db.models import Job
    from adq.jobs.db.session import get_engine, session_scope

    with session_scope() as s:
        have = s.execute(select(func.count()).select_from(Job)).scalar_one()
    if have >= total:
        return
    own = ("id", "idempotency_key", "status", "created_at", "updated_at", "student_finished_at", "finished_at")
    listed = ", ".join(c.name for c in Job.__table__.columns if c.name not in own)
    # Spread over the 30 days before an hour ago, so the teacher-fraction window holds only the real jobs.
    at = "now() - interval '1 hour' - (g % 2592000) * interval '1 second'"
    sql = text(
        f"INSERT INTO jobs (id, status, created_at, updated_at, student_finished_at, finished_at, {listed}) "
        f"SELECT gen_random_uuid()::text, CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'succeeded' END, "
        f"{at}, {at}, {at}, {at}, {listed} "
        f"FROM (SELECT * FROM jobs WHERE status = 'succeeded' LIMIT 1) AS t, generate_series(1, :n) AS g"
    )
    with get_engine().begin() as conn:
        conn.execute(sql, {"n": total - have})
        conn.execute(text("ANALYZE jobs"))


def _seed_jobs() -> None:
    """A few real jobs through the stage code's records, so the copies and the Redis counts are real."""
    from adq.core.status import Route
    from adq.jobs import records
    from adq.jobs.db import jobs
    from adq.jobs.holders import Claimant
    from adq.jobs.stage import STUDENT

    for i in range(LIVE_ROWS + 1):
        row, _ = records.record(f"metrics bench {i}", preset="null", k=50, seed=i)
        if i == 0:
            claim = jobs.claim(row.id, STUDENT, Claimant("bench"))
            jobs.record_student(claim, Route.FINISH, score=0.5, student_key="k", steps=1, generate_s=0.01, score_s=0.01)


def _time(fn, n: int) -> float:
    fn()  # warm: connections, plans
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def run(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), scrapes: int = 20, out: str | None = None) -> dict:
    from adq.gateway import metrics as gateway_metrics
    from adq.jobs.db.migrate import upgrade

    s = get_settings()
    if s.broker_kind != "redis" or not s.effective_database_url.startswith("postgresql"):
        raise InputError("the metrics benchmark needs Redis and PostgreSQL: set ADQ_BROKER_URL and ADQ_DATABASE_URL")
    if sorted(sizes) != list(sizes) or sizes[0] <= LIVE_ROWS:
        raise InputError(f"--rows must be increasing sizes above {LIVE_ROWS}")
    upgrade()
    _seed_jobs()
    rows = []
    for size in sizes:
        _fill(size)
        served = _time(lambda: gateway_metrics.render(None), scrapes)
        table = _time(gateway_metrics.scan_table, max(3, scrapes // 4))
        rows.append({"rows": size, "scrape_ms": served, "full_table_scan_ms": table})
        print(f"{size:>9} rows: scrape {served:7.1f} ms   (aggregates over the table, as before: {table:8.1f} ms)")
    result = {"scrapes": scrapes, "rows": rows}
    write_json(out, result)
    return result

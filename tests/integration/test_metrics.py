"""Worker-kept metrics: what the stages record reaches a scrape through Redis, and a scrape reads nothing from the
jobs table that grows with it."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from adq.core.status import Route
from adq.jobs import metrics
from adq.jobs.db import jobs
from adq.jobs.db.session import get_engine
from adq.jobs.holders import Claimant
from adq.jobs.stage import STUDENT
from tests.factories import job
from tests.helpers import configured


def _scrape() -> dict:
    from adq.gateway.metrics import render

    text, _ = render(None)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def _finish_one(score: float) -> None:
    row = job(k=50)
    claim = jobs.claim(row.id, STUDENT, Claimant("w"))
    done = jobs.record_student(claim, Route.FINISH, score=score, student_key="k", steps=2, generate_s=0.2, score_s=0.01)
    metrics.observe(metrics.stage_samples("student", done))


def test_recorded_stages_reach_the_scrape_through_redis(pg_env, redis_url):
    import redis

    # A Redis database of its own: counts are cumulative, and nothing else may add to them during the test.
    own = redis_url.rsplit("/", 1)[0] + "/12"
    redis.Redis.from_url(own).flushdb()
    with configured(ADQ_BROKER_URL=own):
        for score in (-0.5, 0.7, 2.2):
            _finish_one(score)
        jobs.fail(job(k=50).id, "boom")
        m = _scrape()
    assert m[("adq_jobs_finished_total", (("status", "succeeded"),))] == 3
    assert m[("adq_jobs_finished_total", (("status", "failed"),))] == 1
    assert m[("adq_student_seconds_count", ())] == 3
    assert abs(m[("adq_student_seconds_sum", ())] - 0.6) < 1e-9
    assert m[("adq_student_seconds_bucket", (("le", "0.1"),))] == 0
    assert m[("adq_student_seconds_bucket", (("le", "0.25"),))] == 3
    assert m[("adq_estimator_score_bucket", (("le", "0.5"),))] == 1  # -0.5 only; le is inclusive
    assert m[("adq_estimator_score_bucket", (("le", "1.0"),))] == 2
    assert m[("adq_estimator_score_bucket", (("le", "+Inf"),))] == 3
    assert m[("adq_jobs", (("status", "queued"),))] == 0


def test_a_scrape_reads_only_index_bounded_rows(pg_env, redis_url):
    """Every statement a scrape sends is bounded by an indexed condition: the live statuses or the window."""
    with configured(ADQ_BROKER_URL=redis_url):
        _finish_one(0.3)
        sent: list[str] = []

        def capture(conn, cursor, statement, *args):
            sent.append(statement)

        event.listen(get_engine(), "before_cursor_execute", capture)
        try:
            _scrape()
        finally:
            event.remove(get_engine(), "before_cursor_execute", capture)
    on_jobs = [s for s in sent if re.search(r"\bFROM jobs\b", s)]
    assert on_jobs, sent
    for statement in on_jobs:
        where = statement.split("WHERE", 1)[1] if "WHERE" in statement else ""
        assert re.search(r"jobs\.status IN|jobs\.student_finished_at >=", where), statement


def test_without_redis_the_scrape_falls_back_to_the_table(sqlite_env):
    _finish_one(0.3)
    m = _scrape()
    assert m[("adq_jobs_finished_total", (("status", "succeeded"),))] == 1
    assert m[("adq_student_seconds_count", ())] == 1

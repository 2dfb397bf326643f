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


def test_model_loads_evictions_and_resident_bytes_reach_the_scrape(pg_env, redis_url):
    import redis

    from adq import context
    from adq.core import process
    from adq.core.logs import worker_name
    from adq.method.models import residency
    from adq.method.models.residency import Residency

    own = redis_url.rsplit("/", 1)[0] + "/13"
    redis.Redis.from_url(own).flushdb()
    with configured(ADQ_BROKER_URL=own):
        context.current()  # a worker's context adds its metrics to the residency's reporters
        assert len(residency.REPORTERS) == 1
        res = Residency(100)
        try:
            for name in ("a", "b"):  # b's load evicts a's model
                key = ("base", name)
                with res.using(name):
                    make = lambda key=key, name=name: res.admit(key, name, object, lambda _t: 60)  # noqa: E731
                    process.once(key, make, close=lambda _t, key=key: res.forget(key))
            m = _scrape()
        finally:
            process.drop(process.kind("base"))
    assert m[("adq_model_loads_total", (("preset", "a"),))] == 1
    assert m[("adq_model_loads_total", (("preset", "b"),))] == 1
    assert m[("adq_model_evictions_total", (("preset", "a"),))] == 1
    assert ("adq_model_load_seconds_total", (("preset", "b"),)) in m
    assert m[("adq_model_resident_bytes", (("preset", "b"), ("worker", worker_name())))] == 60
    assert ("adq_model_resident_bytes", (("preset", "a"), ("worker", worker_name()))) not in m

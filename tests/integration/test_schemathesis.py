"""Schemathesis against the gateway on real services (PostgreSQL, Redis as broker and rate-limit store, S3 on
moto): generated requests for every operation, every built-in check (no 5xx, statuses, content types and bodies
as documented, invalid data refused, valid data accepted), the event streams included (they end after
ADQ_STREAM_LIFETIME_S here), one operation at a time and then in stateful sequences. As a tenant sees it: one API
key at the shipped default rate limit (so 429s occur, and must be as documented), and the operational endpoints
behind an ops token this key does not hold (their 401 must be as documented too)."""

from __future__ import annotations

import collections
import time
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from adq.core.config import Settings
from tests.helpers import configured

LOADED: list = []
KEY = "tenant-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
RESPONSES_SEEN: collections.Counter = collections.Counter()


@pytest.fixture()
def web_schema(pg_url, redis_url, s3_endpoint, s3_storage_url, tmp_path):
    env = dict(
        ADQ_DATABASE_URL=pg_url,
        ADQ_BROKER_URL=redis_url,
        ADQ_STORAGE_URL=s3_storage_url,
        ADQ_S3_ENDPOINT_URL=s3_endpoint,
        ADQ_HOME=str(tmp_path / "home"),
        ADQ_API_KEYS=f"tenant:{KEY}",
        ADQ_OPS_TOKEN="ops-token-0123456789abcdef",
        ADQ_WEBHOOK_SECRET="schemathesis-secret",
        # Which hosts a webhook may reach is policy on DNS answers, which JSON Schema cannot state; the policy's
        # refusals are tested in test_gateway.py.
        ADQ_WEBHOOK_ALLOW_PRIVATE="true",
        ADQ_RATE_LIMIT=Settings.model_fields["rate_limit"].default,  # the shipped default (the suite turns it off)
        ADQ_RATE_LIMIT_STORAGE_URL=redis_url,
        ADQ_STREAM_LIFETIME_S="0.3",  # the event streams end, so their answers can be checked too
        ADQ_MAX_WAIT_S="0.3",  # and a `Prefer: wait` is cut short: no worker runs here, so every wait runs out
    )
    with configured(**env):
        import redis

        from adq.control import published
        from adq.control.policy import ControlState
        from adq.gateway.app import create_app

        # A fresh controller value, so /v1/control answers 200 (its 503 without one is tested elsewhere).
        fresh = ControlState("slo", 10.0, 10.0, 1.0, 1, time.time() + 3600, "schemathesis")
        published.publish(redis.Redis.from_url(redis_url), fresh)

        redis.Redis.from_url(redis_url).flushdb()  # a fresh rate-limit window for this test's key
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(), headers=AUTH)
        LOADED.append(schema)  # kept alive: a cache keyed by a freed schema's id would serve the next one stale data
        yield schema


IMAGES = ("init_image", "control_image", "strength")


def _not_shapes(case) -> bool:
    # The shapes preset takes prompts in its own grammar, which JSON Schema cannot state: a schema-valid prompt is
    # refused there (422) by design. Every other preset takes any prompt the schema admits. Likewise "this string
    # is an image that decodes, or an upload this key made", and "strength goes with an init_image": the image
    # fields are left out of generated jobs here and tested in tests/integration/test_inputs.py.
    body = case.body if isinstance(case.body, dict) else {}
    shared = body.get("shared") if isinstance(body.get("shared"), dict) else {}
    items = body.get("items") if isinstance(body.get("items"), list) else []
    jobs = [body, shared, *(i for i in items if isinstance(i, dict))]
    shapes = {"shapes", "shapes-control"}
    presets = [j.get("preset") for j in jobs]  # a negative case may put any JSON value there
    return not any(p in shapes for p in presets if isinstance(p, str)) and not any(f in j for j in jobs for f in IMAGES)


CALLS: list[str] = []


def _off_shapes(value):
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in IMAGES}
        shapes = ("shapes", "shapes-control")
        return {k: ("tiny" if k == "preset" and v in shapes else _off_shapes(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_off_shapes(v) for v in value]
    return value


def test_sequences_of_calls_keep_the_contract(web_schema):
    # First in this file: run after the one-operation test in the same process, hypothesis reports the state
    # machine's draws as flaky (state that schemathesis keeps across schemas); alone, or first, they are stable.
    # Schemathesis' stateful phase: links between operations inferred from the schema (a job's id from POST
    # /v1/jobs into its view, cancel, retry, image and events; a batch's likewise), run as sequences
    Machine = web_schema.exclude(path="/v1/uploads").as_state_machine()
    assert len(Machine.bundles) >= 2, "no links inferred between the operations"

    class Sequences(Machine):
        def setup(self):
            # Each sequence starts from no jobs: hypothesis assumes that the same draws meet the same answers, and
            # a server that kept the jobs of earlier sequences answers them differently (a rule's bundle filled
            # once and empty the next time), which it reports as flaky generation
            from sqlalchemy import delete

            from adq.jobs.db.models import Batch, Job, JobEvent
            from adq.jobs.db.session import session_scope

            with session_scope() as s:
                for table in (JobEvent, Job, Batch):
                    s.execute(delete(table))
            # Likewise the rate limiter's window: a sequence that drew large batches or num_outputs=4 would leave
            # the next one's same draws answered 429
            import redis

            from adq.core.config import get_settings

            limiter = redis.Redis.from_url(get_settings().rate_limit_storage_url)  # the fixture sets it
            for key in limiter.scan_iter("LIMITS*"):
                limiter.delete(key)

        def before_call(self, case):
            case.body = _off_shapes(case.body)  # as _not_shapes above: that grammar is not JSON Schema's
            # A fresh idempotency key per call: hypothesis replays a drawn key in later sequences, and the server
            # remembers it (a 409 leaves a bundle empty), which hypothesis reports as flaky generation
            if case.headers and any(k.lower() == "idempotency-key" for k in case.headers):
                case.headers = {k: v for k, v in case.headers.items() if k.lower() != "idempotency-key"}
                case.headers["Idempotency-Key"] = uuid.uuid4().hex
            case.headers = {**(case.headers or {}), **AUTH}
            CALLS.append(f"{case.method} {case.path}")

        def after_call(self, response, case):
            RESPONSES_SEEN[response.status_code] += 1

    Sequences.run(
        settings=settings(
            max_examples=20,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=False,  # derandomized after the test above, hypothesis reports its replay as flaky
            database=None,
            # No shrinking: a sequence replays against a server whose state moved on, which hypothesis reports as
            # flaky generation instead of the failure itself
            phases=[Phase.explicit, Phase.generate],
        )
    )
    linked = collections.Counter(c for c in CALLS if "{" in c)
    assert len(linked) >= 4, linked  # the sequences reached the ids that earlier calls made


def test_every_operation_conforms_to_its_schema(web_schema):
    # The operations one by one through schemathesis' strategies (its lazy pytest fixture loader does not run
    # on pytest 9.2); every failure is collected, so one run names them all.
    from adq.gateway.limits import hit

    # The key has spent part of its minute already (as a busy tenant would have), so the default limit is reached
    # in the last operations of this run, and their 429s are checked against the document like any other answer.
    hit("tenant", cost=450)
    failures, ran = [], 0
    for result in web_schema.get_all_operations():
        operation = result.ok()
        # An upload's bytes must be an image, which the schema cannot state: only refusals are generated for it
        modes = [GenerationMode.NEGATIVE] if operation.path == "/v1/uploads" else list(GenerationMode)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode).filter(_not_shapes))
            @settings(
                max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
            )
            def check(case):
                response = case.call_and_validate(headers=AUTH)
                RESPONSES_SEEN[response.status_code] += 1

            try:
                check()
            except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters, or only a path)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # a failed check, reported with its operation
                failures.append(f"{operation.label} ({mode.value}): {exc}")
        ran += 1
    assert ran >= 12, ran
    assert not failures, "\n\n".join(failures)
    assert RESPONSES_SEEN[429] > 0 and RESPONSES_SEEN[401] > 0, RESPONSES_SEEN  # both answers met, as documented

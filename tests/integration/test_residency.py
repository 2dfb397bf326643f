"""The model memory budget over the tiny twins of all five families, through the registry the workers use: a
shuffled stream of jobs never passes the budget, an evicted preset's next job loads it again and succeeds, and a
budget smaller than one model refuses it by name."""

from __future__ import annotations

import random

import pytest

from adq.core import process
from adq.core.errors import ModelTooLarge
from adq.method import cascade
from adq.method.models import registry, residency
from tests.factories import params
from tests.helpers import configured

FAMILIES = ["tiny", "tiny-sd15", "tiny-sd3", "tiny-flux", "tiny-zimage"]


def job(preset: str, seed: int):
    """One job's model calls, as the runner makes them: each holds its preset's models while it runs."""
    p = params(preset=preset, seed=seed, width=32, height=32, teacher_guidance=1.0)
    with registry.using(preset):
        image = cascade.generate(registry.student(preset), p).image
    with registry.using(preset):
        (score,) = registry.estimator(preset).score([p.prompt], [image])
    with registry.using(preset):
        better = cascade.improve(registry.teacher(preset), image, p).image
    return score, better


@pytest.fixture()
def sizes():
    """Each family's bytes (student, teacher and estimator), measured with no budget."""
    with configured(ADQ_MODEL_MEMORY_BYTES="0"):
        registry.clear()
        out = {}
        for preset in FAMILIES:
            before = residency.current().resident
            job(preset, 1)
            out[preset] = residency.current().resident - before
        registry.clear()
    yield out
    registry.clear()
    process.drop(process.kind("residency"))


def test_a_stream_across_every_family_stays_within_a_budget_that_fits_two(sizes):
    budget = sum(sorted(sizes.values())[-2:])  # any two families fit, three of the largest do not
    assert budget < sum(sizes.values())
    order = [preset for preset in FAMILIES for _ in range(3)]
    random.Random(5).shuffle(order)
    with configured(ADQ_MODEL_MEMORY_BYTES=str(budget)):
        process.drop(process.kind("residency"))
        res = residency.current()
        for i, preset in enumerate(order):
            score, image = job(preset, i)
            assert image.size == (32, 32) and score == score  # a real score, not NaN
            assert res.resident <= budget
        assert res.peak <= budget, f"resident bytes reached {res.peak}, over the budget of {budget}"
        assert res.evictions > 0 and res.loads > 3 * len(FAMILIES)  # evicted presets were loaded again


def test_an_evicted_presets_next_job_loads_it_again_and_matches_its_first_image(sizes):
    with configured(ADQ_MODEL_MEMORY_BYTES=str(sizes["tiny-sd15"])):  # tiny-sd15 alone fills it
        process.drop(process.kind("residency"))
        res = residency.current()
        _, first = job("tiny-sd15", 3)
        job("tiny-sd3", 3)  # evicts the least recently used of tiny-sd15's models
        assert res.evictions > 0 and len([e for e in res.entries.values() if "tiny-sd15" in e.users]) < 3
        loads = res.loads
        _, again = job("tiny-sd15", 3)
        assert res.loads > loads
        assert list(first.getdata()) == list(again.getdata())


def test_a_budget_smaller_than_a_model_refuses_it_by_name(sizes):
    with configured(ADQ_MODEL_MEMORY_BYTES="1MB"):
        process.drop(process.kind("residency"))
        with pytest.raises(ModelTooLarge, match=r"tiny SD1.5 student needs .*MiB.*ADQ_MODEL_MEMORY_BYTES"):
            registry.student("tiny-sd15")

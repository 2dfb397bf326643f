"""The model memory budget's own rules, over stand-in models of known sizes (the tiny twins are in
tests/integration/test_residency.py)."""

from __future__ import annotations

import threading
import time

import pytest

from adq.core import process
from adq.core.errors import ModelTooLarge
from adq.method.models import residency
from adq.method.models.residency import Residency


class Weights:
    def __init__(self, nbytes: int):
        self.nbytes = nbytes


def load(res: Residency, name: str, nbytes: int, preset: str | None = None, estimate: bool = True):
    """Load a stand-in model of ``nbytes``; ``estimate``: its size is known before the load (weight files)."""
    key = ("base", name)
    size = nbytes if estimate else 0
    make = lambda: res.admit(key, name, lambda: Weights(nbytes), lambda w: w.nbytes, estimate=size)  # noqa: E731
    with res.using(preset or name):
        thing = process.once(key, make, close=lambda _t: res.forget(key))
        res.touch(key)
    return thing


@pytest.fixture()
def res():
    yield Residency(100)
    process.drop(process.kind("base", "model"))


def test_the_least_recently_used_model_goes_first_and_the_budget_holds(res):
    load(res, "a", 40)
    load(res, "b", 40)
    with res.using("a"):  # a call of a: b is now the least recently used
        pass
    load(res, "c", 40)
    assert set(res.entries) == {("base", "a"), ("base", "c")}
    assert res.resident <= res.budget and res.evictions == 1
    assert [e[0] for e in res.events] == ["load", "load", "evict", "load"]  # room made before the load


def test_an_evicted_model_is_loaded_again_on_its_next_use(res):
    first = load(res, "a", 60)
    load(res, "b", 60)
    again = load(res, "a", 60)
    assert again is not first and res.loads == 3 and set(res.entries) == {("base", "a")}


def test_a_model_larger_than_the_budget_is_refused_with_its_size_and_the_budget(res):
    load(res, "a", 30)
    with pytest.raises(ModelTooLarge, match=r"huge needs .*\(101 bytes\).*budget of .*\(100 bytes"):
        load(res, "huge", 101)
    assert set(res.entries) == {("base", "a")}  # nothing was evicted for a model that could never fit


def test_a_size_known_from_an_earlier_load_makes_room_before_the_load(res):
    load(res, "a", 60, estimate=False)
    load(res, "b", 60, estimate=False)  # evicts a, after its load: its size was not known before
    seen = []
    key = ("base", "a")
    with res.using("a"):
        res.admit(key, "a", lambda: seen.append(res.resident) or Weights(60), lambda w: w.nbytes)
    assert seen == [0]  # b left before a's second load started, so the budget held during the load too


def test_a_model_a_running_call_holds_is_never_evicted(res):
    load(res, "slow", 60)
    started, release = threading.Event(), threading.Event()

    def slow_call():
        with res.using("slow"):
            started.set()
            release.wait(10)

    runner = threading.Thread(target=slow_call)
    runner.start()
    started.wait(5)
    other = threading.Thread(target=load, args=(res, "other", 60))
    other.start()
    time.sleep(0.3)
    assert ("base", "slow") in res.entries and ("base", "other") not in res.entries  # the load waits for room
    release.set()
    runner.join(5)
    other.join(5)
    assert set(res.entries) == {("base", "other")} and res.resident <= res.budget


def test_a_preset_whose_models_together_pass_the_budget_is_refused_not_left_waiting(res):
    with res.using("p"):
        load(res, "p-student", 60, preset="p")
        with pytest.raises(ModelTooLarge, match="together need more"):
            load(res, "p-teacher", 60, preset="p")


def test_no_budget_counts_and_never_evicts():
    res = Residency(None)
    try:
        for name in "abc":
            load(res, name, 10**12)
        assert res.resident == 3 * 10**12 and res.evictions == 0
    finally:
        process.drop(process.kind("base"))


def test_the_default_budget_is_half_the_ram_on_cpu():
    import os

    class Cpu:
        type = "cpu"

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert residency.default_budget(Cpu()) == int(ram * residency.CPU_SHARE)

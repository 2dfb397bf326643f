"""The model lane: one model thread, calls batched by key, every caller its own result or error."""

from __future__ import annotations

import contextlib
import threading
import time
from types import SimpleNamespace

import pytest

from adq.jobs import lane as lane_module
from adq.jobs.holders import running_here
from adq.jobs.lane import InlineLane, ModelLane


def _lane(max_batch=4, wait_s=0.0):
    return ModelLane(lambda key: max_batch if key[0] == "batched" else 1, lambda key: wait_s)


def _queued(lane, n: int, timeout_s: float = 10.0) -> None:
    """Wait until ``n`` calls wait in the lane's queue (behind a call that holds the model thread)."""
    deadline = time.monotonic() + timeout_s
    while len(lane._pending) < n:
        assert time.monotonic() < deadline, f"{len(lane._pending)} of {n} calls queued"
        time.sleep(0.005)


class FakeClock:
    """The lane's clocks, moved by the test: model time and time limits without a timing window."""

    def __init__(self):
        self.now = 1000.0

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(lane_module, "time", SimpleNamespace(perf_counter=self.read, monotonic=self.read))

    def read(self) -> float:
        return self.now


def _callers(lane, keys, fn, items, announced=None):
    results = [None] * len(items)

    def one(i):
        results[i] = lane.call(keys[i], fn, items[i], timeout_s=10, announced=announced[i] if announced else None)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_waiting_calls_with_one_key_share_a_batch_and_each_gets_its_own_result():
    seen = []
    running, gate = threading.Event(), threading.Event()

    def fn(items):
        if items == ["block"]:
            running.set()
            gate.wait(5)  # hold the lane so the others queue up behind it
        seen.append(list(items))
        return [f"{x}!" for x in items]

    lane = _lane(max_batch=3)
    blocker = threading.Thread(target=lane.call, args=(("solo",), fn, "block"))
    blocker.start()
    assert running.wait(5)
    out = []
    callers = threading.Thread(target=lambda: out.extend(_callers(lane, [("batched",)] * 5, fn, list("abcde"))))
    callers.start()
    _queued(lane, 5)
    gate.set()
    callers.join()
    blocker.join()
    lane.stop()
    assert sorted(r.value for r in out) == ["a!", "b!", "c!", "d!", "e!"]
    sizes = sorted(len(b) for b in seen[1:])
    assert sizes == [2, 3], seen  # five waiting calls: a batch of the limit (3), then the rest
    assert {r.batch for r in out} == {2, 3}


def test_other_keys_are_never_mixed_into_a_batch():
    lane = _lane(max_batch=8, wait_s=0.05)
    seen = []

    def fn(items):
        seen.append(items)
        return items

    _callers(lane, [("batched", 1), ("batched", 2)] * 3, fn, [1, 2, 1, 2, 1, 2])
    lane.stop()
    assert all(len(set(b)) == 1 for b in seen), seen


def test_a_model_error_reaches_every_caller_of_the_batch_and_the_lane_goes_on():
    lane = _lane()

    def bad(items):
        raise ValueError("model exploded")

    with pytest.raises(ValueError, match="model exploded"):
        lane.call(("x",), bad, 1, timeout_s=5)
    assert lane.call(("x",), lambda items: [i * 2 for i in items], 21, timeout_s=5).value == 42
    lane.stop()


def test_a_batch_function_giving_the_wrong_number_of_results_fails_its_callers():
    lane = _lane()
    with pytest.raises(RuntimeError, match="a batch of 1 gave 2 results"):
        lane.call(("x",), lambda items: [1, 2], 1, timeout_s=5)
    lane.stop()


def test_inline_lane_runs_on_the_callers_thread():
    here = threading.get_ident()
    assert InlineLane().call(("x",), lambda items: [threading.get_ident()], None).value == here


def test_model_time_is_shared_across_a_batch(monkeypatch):
    clock = FakeClock()
    clock.install(monkeypatch)
    lane = _lane(max_batch=2, wait_s=60.0)  # the batch closes when its second call arrives, not on a timer

    def fn(items):
        clock.now += 0.2  # the model runs 0.2 s for the two of them
        return items

    with lane.coming(("batched",)) as first, lane.coming(("batched",)) as second:  # both jobs claimed
        out = _callers(lane, [("batched",)] * 2, fn, [1, 2], announced=[first, second])
    lane.stop()
    assert [(r.batch, r.seconds) for r in out] == [(2, pytest.approx(0.1))] * 2, out


def test_a_job_runs_on_one_thread_of_a_process_at_a_time():
    with running_here("job-1") as first:
        with running_here("job-1") as second, running_here("job-2") as other:
            assert (first, second, other) == (True, False, True)
        with running_here("job-1") as still_held:
            assert not still_held  # the duplicate's exit did not free the first holder's job
    with running_here("job-1") as again:
        assert again


def test_worker_designs_pick_their_pool_and_jobs_in_flight():
    from adq.workers.launch import worker_argv
    from tests.helpers import configured

    def pool_of(argv):
        return argv[argv.index("--pool") + 1], argv[argv.index("--concurrency") + 1]

    with configured(ADQ_WORKER_DESIGN="overlapped", ADQ_WORKER_THREADS="0"):
        # Three jobs in flight per batch slot of the default preset (tiny: batches of 8 and 4) ...
        assert pool_of(worker_argv("student")) == ("threads", "24")
        assert pool_of(worker_argv("teacher")) == ("threads", "12")
        assert pool_of(worker_argv("teacher", concurrency=5)) == ("threads", "5")
    with configured(ADQ_WORKER_DESIGN="overlapped", ADQ_WORKER_THREADS="0", ADQ_DETERMINISTIC="true"):
        # ... and the pool's own floor when every job runs alone
        assert pool_of(worker_argv("student")) == ("threads", "12")
        assert pool_of(worker_argv("teacher")) == ("threads", "3")
    with configured(ADQ_WORKER_DESIGN="overlapped", ADQ_WORKER_THREADS="7"):
        assert pool_of(worker_argv("student")) == ("threads", "7")
    with configured(ADQ_WORKER_DESIGN="serial"):
        assert pool_of(worker_argv("teacher")) == ("prefork", "1")


def test_the_controller_counts_one_model_per_threads_node_and_one_per_prefork_child():
    from adq.tasks.controller import _model_slots

    assert _model_slots({"pool": {"max-concurrency": 3, "threads": 3}}) == 1
    assert _model_slots({"pool": {"max-concurrency": 2, "processes": [11, 12]}}) == 2


def test_the_time_limit_counts_from_the_start_of_the_run_not_the_wait_in_the_queue(monkeypatch):
    clock = FakeClock()
    clock.install(monkeypatch)
    lane = _lane()
    running = threading.Event()

    def slow(items):
        running.set()
        _queued(lane, 1)  # b waits behind this run ...
        clock.now += 10.0  # ... for 10 s of the lane's clock, far past b's own 0.8 s limit
        return items

    first = threading.Thread(target=lane.call, args=(("a",), slow, 1))
    first.start()
    assert running.wait(5)
    # Queued behind another job's 10 s run, with a 0.8 s limit of its own: it waits, then runs in time.
    assert lane.call(("b",), lambda items: items, 2, timeout_s=0.8).value == 2
    first.join()
    lane.stop()


def test_a_failing_batch_runs_again_in_halves_so_one_bad_job_fails_alone():
    running, gate = threading.Event(), threading.Event()
    seen = []

    def fn(items):
        if items == ["hold"]:
            running.set()
            gate.wait(5)
            return items
        seen.append(list(items))
        if "bad" in items:
            raise ValueError("this prompt breaks the model")
        return [f"{x}!" for x in items]

    lane = _lane(max_batch=4)
    holder = threading.Thread(target=lane.call, args=(("solo",), fn, "hold"))
    holder.start()
    assert running.wait(5)
    results = {}

    def one(x):
        try:
            results[x] = lane.call(("batched",), fn, x, timeout_s=10).value
        except ValueError as exc:
            results[x] = exc

    callers = [threading.Thread(target=one, args=(x,)) for x in ("a", "bad", "c", "d")]
    for t in callers:
        t.start()
    _queued(lane, 4)
    gate.set()
    for t in callers:
        t.join()
    holder.join()
    lane.stop()
    assert isinstance(results.pop("bad"), ValueError)
    assert results == {"a": "a!", "c": "c!", "d": "d!"}  # its neighbours were not failed with it
    assert seen == [["a", "bad", "c", "d"], ["a", "bad"], ["a"], ["bad"], ["c", "d"]]  # halves, down to the bad one


def test_out_of_memory_in_a_batch_retries_smaller_batches_until_they_fit():
    class OutOfMemory(RuntimeError):  # stands in for torch.OutOfMemoryError, a RuntimeError
        pass

    def fn(items):
        if len(items) > 2:
            raise OutOfMemory("CUDA out of memory")
        return items

    lane = _lane(max_batch=8)
    gate, running = threading.Event(), threading.Event()
    holder = threading.Thread(target=lane.call, args=(("solo",), lambda i: (running.set(), gate.wait(5)) and i, 0))
    holder.start()
    assert running.wait(5)
    out = []
    callers = threading.Thread(target=lambda: out.extend(_callers(lane, [("batched",)] * 8, fn, list(range(8)))))
    callers.start()
    _queued(lane, 8)
    gate.set()
    callers.join()
    holder.join()
    lane.stop()
    assert sorted(r.value for r in out) == list(range(8)) and {r.batch for r in out} == {2}


def test_a_calls_time_limit_scales_with_its_batch(monkeypatch):
    clock = FakeClock()
    clock.install(monkeypatch)
    lane = _lane(max_batch=4, wait_s=60.0)

    def fn(items):
        clock.now += 1.5  # 1.5 s for four images: past one call's 1.0 s limit, within four times it
        return items

    out = []
    with contextlib.ExitStack() as claimed:
        tokens = [claimed.enter_context(lane.coming(("batched",))) for _ in range(4)]

        def one(i, token):
            out.append(lane.call(("batched",), fn, i, timeout_s=1.0, announced=token))

        callers = [threading.Thread(target=one, args=(i, t)) for i, t in zip((1, 2, 3, 4), tokens)]
        for t in callers:
            t.start()
        for t in callers:
            t.join()
    lane.stop()
    assert sorted(r.value for r in out) == [1, 2, 3, 4] and {r.batch for r in out} == {4}


def test_a_forming_batch_waits_only_for_jobs_already_claimed():
    lane = _lane(max_batch=4, wait_s=60.0)
    done = threading.Event()
    with lane.coming(("batched",)):  # a job claimed by another thread, still loading its inputs
        caller = threading.Thread(target=lambda: (lane.call(("batched",), lambda i: i, 1, timeout_s=90), done.set()))
        caller.start()
        _queued(lane, 0)
        assert not done.wait(0.3)  # the lane holds the batch open for the announced job
    # The other job never called (it failed, or was skipped): nothing is on its way, so the batch runs at once.
    assert done.wait(5)
    caller.join()
    # With nothing announced, a call never waits for company, whatever the longest wait.
    assert lane.call(("batched",), lambda i: i, 2, timeout_s=5).batch == 1
    lane.stop()

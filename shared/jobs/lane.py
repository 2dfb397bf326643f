"""The model lane: one thread per worker process runs every model call, so the model never waits for I/O.

In the overlapped design a worker runs several jobs at once on task threads. Each job's claim, image download,
encode, upload, record and next message happen on its own thread; its model calls are queued here and run one at
a time (one GPU, one copy of the weights). While one job's image uploads, the next job's is being generated.

Calls queued under the same batch key (the same model and settings) that are waiting together run as one batch,
up to ``max_batch``. A forming batch waits only for calls that are on their way (``coming``: a task thread has
claimed a compatible job and is about to call), at most ``max_wait_s``; with none on their way it takes what is
waiting, so an empty queue costs no wait. Every call still gets its own result, so claims, records and retries stay
per job. A batch that fails (out of GPU memory included) is run again as two halves, down to single calls, so one
bad job fails alone and its neighbours go on; the time limit of a call in a batch of b is b times its own.

The serial design uses ``InlineLane``: the call runs on the caller's thread, as before this module existed.

A model call that outlives the stage's hard time limit means the model is stuck: the process exits (the prefork
pool's hard limit kills its child the same way), and the claims it held are taken over once their leases lapse.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

STUCK_EXIT_CODE = 75  # EX_TEMPFAIL: a supervisor restarts the worker

BatchFn = Callable[[Sequence[object]], Sequence[object]]


@dataclass
class _Call:
    key: Hashable
    fn: BatchFn  # items -> results, one per item
    item: object
    future: Future = field(default_factory=Future)
    started: float | None = None  # monotonic time the lane began running it
    size: int = 1  # the batch it runs in


@dataclass
class Coming:
    """A call announced before it is made (``ModelLane.coming``)."""

    key: Hashable
    arrived: bool = False


@dataclass(frozen=True)
class Timed:
    """A call's result and its share of the model time of the batch it ran in."""

    value: object
    seconds: float
    batch: int


class InlineLane:
    """The serial design: the model runs on the calling thread."""

    def call(self, key: Hashable, fn: BatchFn, item, *, timeout_s: float | None = None, announced=None) -> Timed:
        t0 = time.perf_counter()
        (value,) = fn([item])
        return Timed(value, time.perf_counter() - t0, 1)

    def stop(self) -> None:
        pass

    @contextmanager
    def coming(self, key: Hashable):
        yield None


class ModelLane:
    def __init__(self, max_batch: Callable[[Hashable], int], max_wait_s: Callable[[Hashable], float]):
        self._max_batch, self._max_wait_s = max_batch, max_wait_s
        self._pending: deque[_Call] = deque()
        self._coming: Counter[Hashable] = Counter()  # announced calls not yet queued, per key
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="adq-model-lane", daemon=True)
        self._thread.start()

    @contextmanager
    def coming(self, key: Hashable):
        """Announce a call with ``key`` that this thread is about to make (its job is claimed): a batch of that key
        forming meanwhile waits for it, at most the key's max wait. Pass the token to ``call(announced=...)``."""
        token = Coming(key)
        with self._cond:
            self._coming[key] += 1
        try:
            yield token
        finally:
            with self._cond:
                if not token.arrived:  # it never called (an error, a skip): nothing to wait for
                    self._coming[key] -= 1
                    self._cond.notify_all()

    def _queue(self, key: Hashable, fn: BatchFn, item, announced: Coming | None = None) -> _Call:
        c = _Call(key, fn, item)
        with self._cond:
            if self._stopped:
                raise RuntimeError("the model lane is stopped")
            if announced is not None and not announced.arrived and announced.key == key:
                announced.arrived = True
                self._coming[key] -= 1
            self._pending.append(c)
            self._cond.notify_all()
        return c

    def submit(self, key: Hashable, fn: BatchFn, item) -> Future:
        """Queue a call without waiting for it (warming the models at start-up)."""
        return self._queue(key, fn, item).future

    def call(self, key: Hashable, fn: BatchFn, item, *, timeout_s: float | None = None, announced=None) -> Timed:
        """Run a call and wait for its result. The time limit counts from when the lane starts the call, not
        from when it was queued: waiting behind other jobs' runs (each under its own limit) is not being stuck."""
        c = self._queue(key, fn, item, announced)
        while True:
            deadline = None if timeout_s is None or c.started is None else c.started + timeout_s * c.size
            try:
                return c.future.result(1.0 if deadline is None else max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                if deadline is not None and time.monotonic() >= deadline:
                    break
        log.critical("a model call outlived its %s s time limit; exiting so the worker restarts", timeout_s)
        logging.shutdown()
        os._exit(STUCK_EXIT_CODE)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # The lane thread.
    def _take_batch(self) -> list[_Call] | None:
        with self._cond:
            while not self._pending and not self._stopped:
                self._cond.wait()
            if not self._pending:
                return None
            first = self._pending.popleft()
            first.started = time.monotonic()
            batch, limit = [first], max(1, self._max_batch(first.key))
            deadline = time.monotonic() + self._max_wait_s(first.key)
            while len(batch) < limit:
                same = [c for c in self._pending if c.key == first.key][: limit - len(batch)]
                for c in same:
                    self._pending.remove(c)
                    c.started = first.started
                batch += same
                left = deadline - time.monotonic()
                if len(batch) >= limit or left <= 0 or self._stopped or self._coming[first.key] <= 0:
                    break
                self._cond.wait(left)  # compatible calls are on their way: wait for them, at most max_wait
            for c in batch:
                c.size = len(batch)
            return batch

    def _loop(self) -> None:
        while (batch := self._take_batch()) is not None:
            self._run(batch)

    def _run(self, batch: list[_Call]) -> None:
        t0 = time.perf_counter()
        try:
            values = list(batch[0].fn([c.item for c in batch]))
            if len(values) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(values)} results")
        except BaseException as exc:
            # Run the halves: one job's bad input (or a batch too large for memory) fails alone.
            if len(batch) > 1 and isinstance(exc, Exception):
                log.warning("a batch of %d failed (%s: %s); running it in halves", len(batch), type(exc).__name__, exc)
                _release_memory()
                half = len(batch) // 2
                self._run(batch[:half])
                self._run(batch[half:])
                return
            for c in batch:  # each caller gets the model's error, as on its own thread
                c.future.set_exception(exc)
            return
        seconds = time.perf_counter() - t0
        for c, v in zip(batch, values):
            c.future.set_result(Timed(v, seconds / len(batch), len(batch)))


def _release_memory() -> None:
    """Give a failed batch's GPU memory back before its halves run (an out-of-memory error leaves it cached)."""
    import sys

    torch = sys.modules.get("torch")  # imported by the models already, if any model runs here
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()

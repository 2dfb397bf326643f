"""A memory budget for the models one worker process holds, with least-recently-used eviction.

Every heavy thing a process loads (a diffusers base with the LoRA adapters loaded into it, a ControlNet, an
estimator, a safety filter) is admitted here under its process-table key (adq.core.process) with its size in bytes,
counted from its modules' parameters and buffers after the load (each storage once), never guessed from names. A
load that would pass ``ADQ_MODEL_MEMORY_BYTES`` first evicts the least recently used entries that no running call
holds; its size is known from an earlier load of the same key, else estimated from its weight files, and measured
again once loaded. A model larger than the whole budget is refused with ``ModelTooLarge``.

A call holds every entry its preset uses (``using``): an entry records the presets that reached it, and an entry of
a preset in use is never evicted; a load that needs its room waits for the call to end. Evicting a base also drops
the student and teacher objects made over it (they hold its pipes), so the next job of that preset loads it again.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from adq.core import process
from adq.core.errors import ModelTooLarge, TransientError

log = logging.getLogger(__name__)

CPU_SHARE = 0.5  # of the machine's RAM, the CPU default: the rest is for activations, the OS and other workers
CUDA_SHARE = 0.9  # of the device's memory: the rest is for activations and the CUDA context
WAIT_S = 600.0  # the most a load waits for running calls to let go of the room it needs

_current = threading.local()  # the preset whose call or load this thread is in
# Called as reporter(event or None, presets, load seconds, {presets: bytes resident}) after each load and eviction;
# the worker's context adds its metrics (adq.context), so this room needs no metrics store.
REPORTERS: list[Callable[[str | None, str, float, dict[str, int]], None]] = []


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


@dataclass
class Entry:
    key: Hashable
    nbytes: int
    last_used: float
    users: set[str] = field(default_factory=set)  # presets that reached it


class Residency:
    """One process's loaded models and their bytes. ``budget`` None: no budget (count, never evict)."""

    def __init__(self, budget: int | None):
        self.budget = budget
        self.entries: dict[Hashable, Entry] = {}
        self.known: dict[Hashable, int] = {}  # sizes measured before: a reload makes its room before it loads
        self.in_use: dict[str, int] = {}  # preset -> running calls
        self.loads = self.evictions = self.peak = 0  # peak: the most resident at any moment, in bytes
        # (event, presets, key, bytes, seconds): the latest ones, for the benchmark and the tests
        self.events: deque[tuple[str, str, Hashable, int, float]] = deque(maxlen=1000)
        self._cond = threading.Condition()  # over an RLock: the methods below nest

    @property
    def resident(self) -> int:
        with self._cond:
            return sum(e.nbytes for e in self.entries.values())

    # -- calls ---------------------------------------------------------------------------------------------------
    @contextmanager
    def using(self, preset: str) -> Iterator[None]:
        """Hold every entry ``preset`` uses while a call runs; what it loads meanwhile is recorded as its own."""
        before = getattr(_current, "preset", None)
        with self._cond:
            self.in_use[preset] = self.in_use.get(preset, 0) + 1
            now = time.monotonic()
            for entry in self.entries.values():
                if preset in entry.users:
                    entry.last_used = now
        _current.preset = preset
        _current.stack = (*getattr(_current, "stack", ()), preset)
        try:
            yield
        finally:
            _current.preset, _current.stack = before, _current.stack[:-1]
            with self._cond:
                self.in_use[preset] -= 1
                if not self.in_use[preset]:
                    del self.in_use[preset]
                self._cond.notify_all()

    def touch(self, key: Hashable) -> None:
        """A use of ``key``: it becomes the most recently used, and the current preset one of its users."""
        with self._cond:
            entry = self.entries.get(key)
            if entry is not None:
                entry.last_used = time.monotonic()
                preset = getattr(_current, "preset", None)
                if preset:
                    entry.users.add(preset)

    # -- loads ---------------------------------------------------------------------------------------------------
    def admit(self, key: Hashable, label: str, make: Callable[[], Any], measure: Callable[[Any], int], estimate=0):
        """Load ``key`` with ``make`` within the budget, and record what ``measure`` counts in it."""
        preset = getattr(_current, "preset", None) or "-"
        known = self.known.get(key)
        if known is not None:
            self._refuse_if_too_large(label, known)
        # Room first: exact for a size measured before, else the weight files' bytes (best effort: a short or
        # long estimate is corrected once the load is measured below)
        self._make_room(known or (estimate() if callable(estimate) else estimate), key, exact=known is not None)
        start = time.monotonic()
        thing = make()
        seconds = time.monotonic() - start
        nbytes = measure(thing)
        self.known[key] = nbytes
        try:
            self._refuse_if_too_large(label, nbytes)
            with self._cond:
                self.entries[key] = Entry(key, nbytes, time.monotonic(), {preset} if preset != "-" else set())
                self.peak = max(self.peak, self.resident)  # a load whose estimate was short passes the budget here
                self.loads += 1
                self.events.append(("load", preset, key, nbytes, seconds))
            self._make_room(0, key)
            self.report("load", preset, seconds)
        except ModelTooLarge:
            self.forget(key)
            del thing
            free()
            raise
        log.info("loaded %s for %s: %s in %.1f s (%s resident)", label, preset, gib(nbytes), seconds, self._of())
        return thing

    def measured(self, key: Hashable, nbytes: int) -> None:
        """``key`` grew after its load (LoRA adapters loaded into a base): count it again, within the budget."""
        with self._cond:
            entry = self.entries.get(key)
            if entry is None or entry.nbytes == nbytes:
                return
            entry.nbytes = self.known[key] = nbytes
            self.peak = max(self.peak, self.resident)
        self._make_room(0, key)

    def forget(self, key: Hashable) -> None:
        """``key`` left the process table (evicted, cleared or reset)."""
        with self._cond:
            self.entries.pop(key, None)
            self._cond.notify_all()

    def by_preset(self) -> dict[str, int]:
        """Resident bytes by the presets that use them (a base two presets share is labelled with both)."""
        out: dict[str, int] = {}
        with self._cond:
            for entry in self.entries.values():
                label = ",".join(sorted(entry.users)) or "-"
                out[label] = out.get(label, 0) + entry.nbytes
        return out

    def report(self, event: str | None = None, preset: str = "-", seconds: float = 0.0) -> None:
        """Tell the reporters (the worker's metrics, adq.jobs.model_metrics): ``event`` and the bytes resident."""
        if REPORTERS:
            held = self.by_preset()
            for reporter in REPORTERS:
                reporter(event, preset, seconds, held)

    # -- eviction ------------------------------------------------------------------------------------------------
    def _of(self) -> str:
        return gib(self.resident) + (f" of {gib(self.budget)}" if self.budget is not None else "")

    def _refuse_if_too_large(self, label: str, nbytes: int) -> None:
        if self.budget is not None and nbytes > self.budget:
            raise ModelTooLarge(
                f"{label} needs {gib(nbytes)} ({nbytes} bytes), more than this worker's model memory budget of "
                f"{gib(self.budget)} ({self.budget} bytes, ADQ_MODEL_MEMORY_BYTES): raise the budget, or serve "
                "this preset on a larger device"
            )

    def _victims(self, need: int, keep: Hashable) -> list[Entry] | None:
        """The least recently used free entries whose bytes make room for ``need``; None while held ones block."""
        over = self.resident + need - self.budget
        if over <= 0:
            return []
        free_ = [e for e in self.entries.values() if e.key != keep and not (e.users & self.in_use.keys())]
        out = []
        for entry in sorted(free_, key=lambda e: e.last_used):
            if over <= 0:
                break
            out.append(entry)
            over -= entry.nbytes
        return out if over <= 0 else None

    def _make_room(self, need: int, keep: Hashable, exact: bool = True) -> None:
        """Evict until ``need`` more bytes fit. Entries that running calls hold are waited for, unless only this
        thread's own call holds them: then an ``exact`` need is refused, and an estimate is left to the measure."""
        if self.budget is None:
            return
        deadline = time.monotonic() + WAIT_S
        with self._cond:
            while (victims := self._victims(need, keep)) is None:
                if set(self.in_use) <= set(getattr(_current, "stack", ())):  # only this thread's own call holds it
                    if not exact:
                        return
                    raise ModelTooLarge(
                        f"the models of preset {getattr(_current, 'preset', None)!r} together need more than this "
                        f"worker's model memory budget ({self._of()}, ADQ_MODEL_MEMORY_BYTES)"
                    )
                if not self._cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise TransientError(f"no room within the model memory budget ({self._of()}) after {WAIT_S} s")
            for entry in victims:
                self.entries.pop(entry.key, None)
        for entry in victims:
            self._evict(entry)

    def _evict(self, entry: Entry) -> None:
        users = ",".join(sorted(entry.users)) or "-"
        shared = entry.key[0] in ("base", "controlnet")  # the student and teacher objects of its presets hold it

        def gone(k: Hashable) -> bool:
            objects = shared and isinstance(k, tuple) and k[:1] == ("model",) and k[1] in ("student", "teacher")
            return k == entry.key or (objects and k[2] in entry.users)

        process.drop(gone)
        free()
        with self._cond:
            self.evictions += 1
            self.events.append(("evict", users, entry.key, entry.nbytes, 0.0))
        self.report("evict", users)
        log.info("evicted %s (%s, used by %s): %s resident", entry.key[:2], gib(entry.nbytes), users, self._of())


def free() -> None:
    """Give freed memory back: Python's cycles first (pipelines hold their components in some), then CUDA's cache."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency of every model worker
        pass


def default_budget(device) -> int:
    """90 % of the CUDA device's memory, else half of this machine's RAM."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory * CUDA_SHARE)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * CPU_SHARE)


def current(device=None) -> Residency:
    """This process's residency, with the budget the settings give (0: none)."""

    def make() -> Residency:
        from adq.core.config import get_settings

        budget = get_settings().model_memory_bytes
        if budget is None:
            budget = default_budget(device)
        return Residency(budget or None)

    return process.once(("residency",), make)


def forget(key: Hashable) -> None:
    current().forget(key)


def refresh() -> None:
    """Refresh this worker's resident-bytes gauge when it holds models (the liveness timer calls it)."""
    held = process.peek(("residency",))
    if held is not None and held.entries:
        held.report()


def module_bytes(thing: Any) -> int:
    """Parameter and buffer bytes of a diffusers pipeline, a torch module, or an object holding either (an
    estimator, a safety filter), each storage counted once."""
    import torch

    seen: set[int] = set()
    total = 0

    def modules(obj, depth: int = 0):
        if isinstance(obj, torch.nn.Module):
            yield obj
        elif hasattr(obj, "components") and isinstance(getattr(obj, "components", None), dict):
            for c in obj.components.values():
                yield from modules(c, depth + 1)
        elif depth < 2 and hasattr(obj, "__dict__"):
            for value in vars(obj).values():
                yield from modules(value, depth + 1)

    for module in modules(thing):
        for t in [*module.parameters(), *module.buffers()]:
            storage = t.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
    return total


def files_bytes(folder: str | os.PathLike | None) -> int:
    """The weight files under a local model folder: a first load's estimate (0 when not a local folder)."""
    if not folder or not os.path.isdir(folder):
        return 0
    total = 0
    for root, _dirs, names in os.walk(folder):
        total += sum(os.path.getsize(os.path.join(root, n)) for n in names if n.endswith((".safetensors", ".bin")))
    return total

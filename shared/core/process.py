"""Per-process resources, held one way.

Settings, the database engine, the storage client, loaded models, the model lane, the decider and Redis clients are
each made on first use *in this process*: a prefork child that inherited its parent's table makes its own, since
sockets, boto3 clients and CUDA state do not survive a fork. ``reset()`` drops every one of them (closing what needs
closing), for a test that changed the settings or a child just forked. One table, one reset: a module that needs a
process-wide thing asks ``once(key, make)`` instead of keeping a global, a pid-keyed dict or an ``lru_cache``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

Closer = Callable[[Any], None]
_held: dict[Hashable, tuple[int, Any, Closer | None, Closer | None]] = {}
_lock = threading.Lock()  # guards the tables, never held while something is made
_making: dict[Hashable, threading.Lock] = {}  # one per key: loading a model does not hold up the storage client


def _after_fork_in_child() -> None:
    # A lock another thread held at the fork stays locked in the child forever: start with fresh ones.
    global _lock, _making
    _lock, _making = threading.Lock(), {}


os.register_at_fork(after_in_child=_after_fork_in_child)


def once(key: Hashable, make: Callable[[], T], close: Closer | None = None, inherited: Closer | None = None) -> T:
    """This process's one ``key``, made by ``make()`` on first use. ``close`` runs when ``reset()`` drops it;
    ``inherited`` runs in a forked child on the parent's copy before the child makes its own (a pooled engine must
    let go of the parent's connections without closing them)."""
    held = _held.get(key)
    if held is not None and held[0] == os.getpid():
        return held[1]
    with _lock:
        making = _making.setdefault(key, threading.Lock())
    with making:  # one maker per key; a second caller waits for the first one's result
        held = _held.get(key)
        if held is not None and held[0] == os.getpid():
            return held[1]
        if held is not None and held[3] is not None:
            held[3](held[1])
        thing = make()
        with _lock:
            _held[key] = (os.getpid(), thing, close, inherited)
        return thing


def peek(key: Hashable) -> Any:
    """This process's ``key`` if it was made, without making it."""
    held = _held.get(key)
    return held[1] if held is not None and held[0] == os.getpid() else None


def drop(match: Callable[[Hashable], bool] = lambda _key: True) -> None:
    """Forget what this table holds under the matching keys: this process's own are closed, a parent's copies
    let go of (their sockets belong to the parent)."""
    with _lock:
        gone = [(k, v) for k, v in _held.items() if match(k)]
        for key, _ in gone:
            del _held[key]
    for _key, (pid, thing, close, inherited) in gone:
        closer = close if pid == os.getpid() else inherited
        if closer is not None:
            closer(thing)


def kind(*names: str) -> Callable[[Hashable], bool]:
    """Matches the keys ``(name, ...)`` of the given kinds, for ``drop``."""
    return lambda key: isinstance(key, tuple) and key[:1] in {(n,) for n in names}


def reset() -> None:
    """The one reset: drop every per-process resource; the next use makes it again from the current settings."""
    drop()

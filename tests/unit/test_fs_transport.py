"""The embedded broker's transport (adq.tasks.fs_transport) against the pinned kombu's filesystem transport.

The races are made deterministic by a hook on ``fcntl.flock``, which both transports call before they hold a
bind's lock: the first binder's first exclusive lock runs a second, complete bind just before it is taken. That
is the moment at which kombu's binder has already created (and truncated) the exchange file."""

from __future__ import annotations

import fcntl
import json

import pytest
from kombu import Connection
from kombu.transport import filesystem

from adq.tasks import fs_transport


def _channel(folder, scheme: str):
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
    }
    for sub in ("queue", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return Connection(f"{scheme}://", transport_options=options).channel()


def _interleaved_binds(folder, scheme: str, monkeypatch) -> list:
    """Bind worker A's queue; at A's first exclusive lock, before it is held, bind worker B's queue whole."""
    a, b = _channel(folder, scheme), _channel(folder, scheme)
    real_flock, state = fcntl.flock, {"fired": False}

    def flock(fd, op):
        if op == fcntl.LOCK_EX and not state["fired"]:
            state["fired"] = True
            b._queue_bind("celery.pidbox", "", "", "b@host.celery.pidbox")
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    a._queue_bind("celery.pidbox", "", "", "a@host.celery.pidbox")
    monkeypatch.setattr(fcntl, "flock", real_flock)
    assert state["fired"]
    return a.get_table("celery.pidbox")


def test_interleaved_binds_keep_both_bindings(tmp_path, monkeypatch):
    table = _interleaved_binds(tmp_path, fs_transport.SCHEME, monkeypatch)
    assert sorted(q.queue for q in table) == ["a@host.celery.pidbox", "b@host.celery.pidbox"]


def test_the_pinned_kombu_transport_still_has_the_race(tmp_path, monkeypatch):
    """The same interleaving on kombu's own transport reads the empty file the first binder just created. When a
    kombu release fixes this, this test fails: then the subclass can go."""
    with pytest.raises(json.JSONDecodeError):
        _interleaved_binds(tmp_path, "filesystem", monkeypatch)


def test_a_table_is_replaced_whole_and_unbinding_keeps_the_others(tmp_path):
    ch = _channel(tmp_path, fs_transport.SCHEME)
    for name in ("x", "y", "z"):
        ch._queue_bind("ex", name, "", name)
    ch._queue_bind("ex", "y", "", "y")  # binding twice adds nothing
    ch._delete("y", "ex", "y", "")
    assert [q.queue for q in ch.get_table("ex")] == ["z", "x"]
    assert sorted(p.name for p in (tmp_path / "control").iterdir()) == [fs_transport.LOCK_NAME, "ex.exchange"]


def test_a_message_is_invisible_to_consumers_until_it_is_whole(tmp_path, monkeypatch):
    producer, consumer = _channel(tmp_path, fs_transport.SCHEME), _channel(tmp_path, fs_transport.SCHEME)
    seen = []
    real_replace = fs_transport.os.replace

    def replace(src, dst):
        with pytest.raises(filesystem.Empty):  # the temporary file is written, not yet renamed
            consumer._get("student")
        seen.append(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(fs_transport.os, "replace", replace)
    producer._put("student", {"body": "x" * 10_000})
    assert seen and consumer._get("student") == {"body": "x" * 10_000}


def test_the_celery_app_speaks_the_safe_transport_for_filesystem_urls():
    from adq.core.config import Settings
    from adq.tasks.app import celery_config

    assert celery_config(Settings(broker_url=""))["broker_url"] == "adqfs://"
    assert celery_config(Settings(broker_url="filesystem://"))["broker_url"] == "adqfs://"
    assert celery_config(Settings(broker_url="redis://h:6379/0"))["broker_url"] == "redis://h:6379/0"
    with Connection("adqfs://") as conn:
        assert isinstance(conn.transport, fs_transport.Transport)

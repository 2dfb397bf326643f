"""The embedded broker: kombu's filesystem transport with queue binding made safe between processes.

Why a subclass: kombu 5.7's ``filesystem.Channel._queue_bind`` checks ``file.exists()``, then opens a missing
exchange table with ``"wb"`` (create and truncate) and only then locks it. Two workers that bind one exchange at
the same moment (Celery's remote-control and event exchanges, bound by every worker at start-up) can therefore
(a) read the empty file the other has just created, which killed a worker with ``JSONDecodeError`` in 2 of 11
``make demo`` runs, or (b) both create it, the second truncating the first's binding away.

Here every change to an exchange table (bind and unbind) holds one exclusive lock on a lock file of our own for
the whole read-modify-write, and the new table is written to a temporary file and moved into place with
``os.replace``. A reader therefore sees either the old table or the new one, never a partial one, and no binding
is lost. Messages get the same treatment: kombu's ``_put`` creates ``<name>.msg`` and then writes it, so a
consumer polling the folder can move and read it while it is still empty. Here a message is written under a name
the consumers' filter skips and renamed into place whole.

Registered as ``adqfs://``; ``filesystem://`` in settings means this transport (see ``transport_url``).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps, loads

SCHEME = "adqfs"
LOCK_NAME = ".bindings.lock"


def transport_url(url: str) -> str:
    """The URL kombu gets: our transport wherever the settings name the filesystem broker."""
    return SCHEME + url[len("filesystem") :] if url.startswith("filesystem://") else url


@contextmanager
def bindings_locked(folder: Path):
    """One exclusive lock, per control folder, around every change to any exchange table."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_table(file: Path) -> list:
    try:
        return [filesystem.exchange_queue_t(*q) for q in loads(file.read_bytes().decode())]
    except FileNotFoundError:
        return []


def write_json_atomic(file: Path, table) -> None:
    """Atomically: a reader that opens ``file`` at any moment gets the whole JSON document."""
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(dumps(table).encode())
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Channel(filesystem.Channel):
    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with bindings_locked(self.control_folder):
                table = read_table(file)
                if entry not in table:
                    write_json_atomic(file, [entry, *table])
        except OSError as exc:
            raise ChannelError(f"Cannot bind {queue!r} in {file}") from exc

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        # The grandparent's _delete purges the queue; the parent's would also rewrite the table in place.
        super(filesystem.Channel, self)._delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        file = self._exchange_file(exchange)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with bindings_locked(self.control_folder):
            table = read_table(file)
            if entry in table:
                write_json_atomic(file, [q for q in table if q != entry])

    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        folder = Path(self.data_folder_out)
        try:
            write_json_atomic(folder / name, payload)
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to {folder}") from exc


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES.setdefault(SCHEME, f"{__name__}:Transport")

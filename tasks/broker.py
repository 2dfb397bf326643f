"""What the broker holds: queue depths, and the ids of task messages that are waiting or unacknowledged.

Celery's Redis transport keeps a queue as a list named after it, and delivered-but-unacked messages in the
``unacked`` hash; the filesystem transport keeps one file per message. RabbitMQ tells a queue's depth (a passive
declare) but lists no messages, so the sweeper cannot see which are there (``pending_task_ids`` is None)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable

from adq.core.config import get_settings
from adq.core.constants import REDIS_UNACKED_INDEX_KEY, REDIS_UNACKED_KEY
from adq.core.redisconn import redis_from_url
from adq.jobs import routes
from adq.jobs.priority import list_names

log = logging.getLogger(__name__)


def _redis():
    return redis_from_url(get_settings().effective_broker_url, timeout_s=5)


def amqp_depths(queues: list[str]) -> dict[str, int]:
    """A passive declare per queue: RabbitMQ answers with its count of ready messages; a queue not declared yet
    holds none (the refusal closes that channel only)."""
    from adq.tasks.app import app

    out = {}
    with app.connection_for_write() as conn:
        for name in queues:
            channel = conn.channel()
            try:
                out[name] = int(channel.queue_declare(name, passive=True).message_count)
            except conn.channel_errors:
                out[name] = 0
            finally:
                try:
                    channel.close()
                except Exception:  # closed by the broker's refusal already
                    pass
    return out


def queue_depths() -> dict[str, int]:
    """Messages waiting per queue (unacked ones are not waiting)."""
    s = get_settings()
    if s.broker_kind == "amqp":
        return amqp_depths(routes.all_queues())
    if s.broker_kind == "redis":
        r = _redis()
        return {q: sum(int(r.llen(name)) for name in list_names(q)) for q in routes.all_queues()}
    if s.broker_kind == "filesystem":
        folder = s.broker_folder / "queue"
        return {q: sum(1 for _ in folder.glob(f"*.{q}.msg")) for q in routes.all_queues()}
    return {}


def _task_id(raw: bytes | str) -> str | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if isinstance(message, list):  # unacked entries are [message, exchange, routing_key]
        message = message[0] if message else {}
    return (message.get("headers") or {}).get("id") if isinstance(message, dict) else None


def pending_task_ids(queues: Iterable[str] | None = None, unacked_within_s: float | None = None) -> set[str] | None:
    """Ids of the task messages still in the broker (waiting or delivered but unacked); None when this broker
    cannot be inspected. The sweeper re-sends only jobs whose message is not among them.

    ``unacked_within_s``: count a delivered message only if it was delivered that recently. A consumer that died
    with the broker leaves its messages in Redis's unacked hash, where only kombu's ``restore_visible`` finds them,
    after the visibility timeout (hours); the sweeper treats them as lost much sooner."""
    s = get_settings()
    raws: list = []
    if s.broker_kind == "redis":
        r = _redis()
        for q in routes.all_queues() if queues is None else queues:
            for name in list_names(q):
                raws += r.lrange(name, 0, -1)
        if unacked_within_s is None:
            raws += r.hvals(REDIS_UNACKED_KEY)
        else:
            recent = r.zrangebyscore(REDIS_UNACKED_INDEX_KEY, time.time() - unacked_within_s, "+inf")
            raws += [raw for raw in (r.hmget(REDIS_UNACKED_KEY, recent) if recent else []) if raw]
    elif s.broker_kind == "filesystem":
        for path in (s.broker_folder / "queue").glob("*.msg"):
            try:
                raws.append(path.read_bytes())
            except OSError:  # consumed while we listed it
                continue
    else:
        return None
    return {tid for tid in map(_task_id, raws) if tid}


_consumers_cache: dict[str, tuple[float, dict[str, int] | None]] = {}


def _active_queues(app) -> dict:
    """Celery's broadcast of active_queues. Its connections come from the app's pool, which a broker restart leaves
    holding dead sockets (a broadcast, unlike a send, does not retry): on an error the pool is closed, once."""
    try:
        return app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception:
        from adq.tasks.app import configure

        configure()  # a fresh pool for the current broker, whatever the last one held
        return app.control.inspect(timeout=1.0).active_queues() or {}


def live_consumers(queue: str, cache_s: float = 10.0, recheck_s: float | None = None) -> int | None:
    """Workers that answer Celery's broadcast and consume ``queue`` (a one-second inspect, cached); None when
    the broker cannot broadcast. ``recheck_s``: an answer of none (0 or None) older than this is asked again, so
    a worker that just started is seen at once where "none" would refuse a job."""
    from adq.tasks.app import app

    url = get_settings().effective_broker_url
    at, counts = _consumers_cache.get(url, (0.0, None))
    age = time.monotonic() - at
    if age > cache_s or (recheck_s is not None and age > recheck_s and not (counts or {}).get(queue)):
        try:
            replies = _active_queues(app)
        except Exception as exc:  # a broker without broadcast, or down: unknown, not zero
            log.warning("could not ask the workers which queues they consume: %s: %s", type(exc).__name__, exc)
            counts = None
        else:
            counts = {}
            for queues in replies.values():
                for q in queues:
                    counts[q["name"]] = counts.get(q["name"], 0) + 1
        _consumers_cache[url] = (time.monotonic(), counts)
    return None if counts is None else counts.get(queue, 0)

"""Which queue a job waits in: jobs go to workers that hold their preset's models warm.

A preset that names a ``group`` (presets that share a base should share one) has queues of its own,
``student.<group>`` and ``teacher.<group>``; a worker started with ``--presets`` consumes only the queues of the
presets it serves, and loads and warms only those. A preset without a group waits in the shared ``student`` and
``teacher`` queues, which every worker started without ``--presets`` consumes (with every group queue besides): a
small deployment runs as before. Priorities and per-key fairness are properties of each queue's messages, so they
hold within every queue as they did in the shared one.
"""

from __future__ import annotations

from adq.core.constants import QUEUES, STUDENT_QUEUE, TEACHER_QUEUE
from adq.core.errors import InputError

POOL_QUEUES = (STUDENT_QUEUE, TEACHER_QUEUE)  # the pools whose queues split by group (webhooks load no model)


def _presets():
    from adq.method.presets import all_presets

    return all_presets()


def _assigned() -> dict[str, str]:
    """ADQ_PRESET_GROUPS: groups given to presets by the deployment (built-in ones included)."""
    from adq.core.config import get_settings

    pairs = [p.split("=", 1) for p in get_settings().preset_groups.split(",") if p.strip()]
    return {name.strip(): group.strip() for name, group in pairs}


def group_of(preset_name: str) -> str | None:
    from adq.method.presets import get_preset

    assigned = _assigned()
    if preset_name in assigned:
        return assigned[preset_name]
    try:
        return get_preset(preset_name).group
    except InputError:  # an unknown preset is refused where it is checked; its messages use the shared queue
        return None


def queue(pool_queue: str, preset_name: str) -> str:
    """The queue a job of ``preset_name`` waits in for the pool ``pool_queue`` (student or teacher)."""
    group = group_of(preset_name) if pool_queue in POOL_QUEUES else None
    return f"{pool_queue}.{group}" if group else pool_queue


def groups() -> dict[str, list[str]]:
    """Every group and the presets in it, in the order the presets are listed."""
    out: dict[str, list[str]] = {}
    for name in [*_presets(), *_assigned()]:
        group = group_of(name)
        if group and name not in out.get(group, []):
            out.setdefault(group, []).append(name)
    return out


def all_queues() -> list[str]:
    """Every queue: the shared ones, then each group's student and teacher queues."""
    return [*QUEUES, *(f"{q}.{g}" for g in groups() for q in POOL_QUEUES)]


def worker_queues(pool_queue: str, presets: list[str] | None) -> list[str]:
    """What a worker of ``pool_queue`` consumes: the queues of the presets it serves, or with none named, the shared
    queue and every group's."""
    if pool_queue not in POOL_QUEUES:
        return [pool_queue]
    if not presets:
        return [pool_queue, *(f"{pool_queue}.{g}" for g in groups())]
    from adq.method.presets import get_preset

    for name in presets:
        get_preset(name)  # an unknown preset fails the start, with the list of known ones
    return list(dict.fromkeys(queue(pool_queue, name) for name in presets))


def serve_command(pool: str, preset_name: str) -> str:
    group = group_of(preset_name)
    names = groups().get(group, [preset_name]) if group else [preset_name]
    return f"adq worker {pool} --presets {','.join(names)}"


def check_served(preset_names, live_consumers) -> None:
    """Refuse jobs of a grouped preset whose queues no live worker consumes (``live_consumers(queue)``: a count,
    or None when the broker cannot tell, which passes). Shared queues are never refused: a pool scaled to zero
    (KEDA) starts a worker when jobs wait there, while a group's workers are kept warm, at least one each."""
    from adq.core.errors import PresetNotServed

    for name in dict.fromkeys(preset_names):
        if not group_of(name):
            continue
        for pool_queue in POOL_QUEUES:
            if live_consumers(queue(pool_queue, name)) == 0:
                raise PresetNotServed(
                    f"preset {name!r}: no live worker serves its {queue(pool_queue, name)} queue; start one with "
                    f"`{serve_command(pool_queue, name)}`"
                )

"""Priorities and fairness as broker lanes.

A job's ``priority`` (high, normal, low) picks a band of three adjacent lanes of the Redis broker's priority
queues (Celery's own ``priority_steps``: lane 0 is served first, and every lane of a band before the next band).
Within its band a job's lane is its key's backlog in units of ADQ_FAIR_SHARE_JOBS: a key's first share of
unfinished jobs takes the band's first lane, its second share the next, the rest the last. A key that floods the
queue therefore sends most of its jobs behind every other key's first share, and a second key's burst interleaves
with the flood share by share instead of waiting behind all of it: round robin in coarse steps, done by the
broker. A priority is never demoted into the next band. The lane is fixed at submit and kept by both stages and
by the sweeper's re-sends."""

from __future__ import annotations

from typing import Literal

Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")
LEVELS = 3  # lanes per priority band
LANES: tuple[int, ...] = tuple(range(LEVELS * len(PRIORITIES)))  # the broker's priority_steps


def lane(priority: str, unfinished_of_key: int, fair_share: int) -> int:
    """The broker lane of a new job, given how many unfinished jobs its key already has."""
    first = LEVELS * PRIORITIES.index(priority)
    if fair_share <= 0:
        return first
    return first + min(LEVELS - 1, unfinished_of_key // fair_share)


def list_names(queue: str, sep: str = ":") -> list[str]:
    """The Redis lists that hold one queue's waiting messages, lane 0 first (kombu names lane 0 after the queue)."""
    return [queue if n == 0 else f"{queue}{sep}{n}" for n in LANES]

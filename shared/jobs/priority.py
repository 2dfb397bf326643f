"""Priorities and fairness as the broker's queue priorities.

A job's ``priority`` (high, normal, low) picks a band of three adjacent steps of the Redis broker's queue
priorities (Celery's own ``priority_steps``: step 0 is served first, and every step of a band before the next
band). Within its band a job's step is its key's backlog in units of ADQ_FAIR_SHARE_JOBS: a key's first share of
unfinished jobs takes the band's first step, its second share the next, the rest the last. A key that floods the
queue therefore sends most of its jobs behind every other key's first share, and a second key's burst interleaves
with the flood share by share instead of waiting behind all of it: round robin in coarse steps, done by the
broker. A priority is never demoted into the next band. The step is fixed at submit (the job's
``queue_priority``) and kept by both stages and by the sweeper's re-sends. ("Lane" means only the model lane,
adq.jobs.lane.)"""

from __future__ import annotations

import hashlib
from typing import Literal

Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")
LEVELS = 3  # steps per priority band
STEPS: tuple[int, ...] = tuple(range(LEVELS * len(PRIORITIES)))  # the broker's priority_steps


def queue_priority(priority: str, unfinished_of_key: int, fair_share: int) -> int:
    """The broker queue priority of a new job, given how many unfinished jobs its key already has."""
    first = LEVELS * PRIORITIES.index(priority)
    if fair_share <= 0:
        return first
    return first + min(LEVELS - 1, unfinished_of_key // fair_share)


def list_names(queue: str, sep: str = ":") -> list[str]:
    """The Redis lists that hold one queue's waiting messages, step 0 first (kombu names step 0 after the queue)."""
    return [queue if n == 0 else f"{queue}{sep}{n}" for n in STEPS]


def owner_tag(owner: str | None) -> str:
    """A short, fixed-length stand-in for an API key's name in stored keys (live score sketches, input images):
    distinct owners stay distinct, and names stay out of them."""
    return hashlib.blake2b((owner or "").encode(), digest_size=6).hexdigest()

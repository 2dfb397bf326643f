"""What a batch costs on the GPU: ``cost(b) = a + c·b`` seconds for a batch of ``b`` images, the fixed part ``a``
(launches, the scheduler, weights read once per step) shared by the batch and the part ``c`` each image adds.

Shipped curves (data/batch_curves.json) fit published profiles through their two points; the null preset spends a
curve (``ADQ_NULL_STUDENT_CURVE``, ``ADQ_NULL_TEACHER_CURVE``), so the efficiency benchmark and the day simulator
price batching on it. Throughput at batch b over batch 1 is ``b·cost(1) / cost(b)``, which tends to
``(a + c) / c`` for large batches: SD-Turbo's curve gives 1.86x at 8."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from adq.core.errors import InputError
from adq.core.resources import data_path

FILE = "batch_curves.json"


@dataclass(frozen=True)
class BatchCurve:
    a_s: float  # seconds a batch costs whatever its size
    c_s: float  # seconds each image adds
    source: str = ""

    def __post_init__(self):
        if self.a_s < 0 or self.c_s <= 0:
            raise InputError(f"a batch curve needs a >= 0 and c > 0 (got a={self.a_s}, c={self.c_s})")

    def seconds(self, batch: int) -> float:
        return self.a_s + self.c_s * batch

    def speedup(self, batch: int) -> float:
        """Images/s at ``batch`` over images/s one at a time."""
        return batch * self.seconds(1) / self.seconds(batch)


@cache
def curves() -> dict[str, BatchCurve]:
    return {name: BatchCurve(**entry) for name, entry in json.loads(data_path(FILE).read_text()).items()}


def curve(name: str) -> BatchCurve:
    try:
        return curves()[name]
    except KeyError:
        raise InputError(f"no batch curve {name!r}; the shipped ones are {', '.join(sorted(curves()))}") from None

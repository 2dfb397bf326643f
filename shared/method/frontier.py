"""Settings of the method as points of cost against quality, and the Pareto frontier over them (`adq tune`).

A ``Setting`` is what a job can be served with: student steps S, the teacher's share k, its strategy, the rollback
sigma (refinement) and teacher steps T. A ``Point`` is a setting measured on a prompt set: mean steps per image
(S plus the teacher's counted steps times the routed fraction), measured seconds per image where timings exist,
and the judge's mean quality. The frontier keeps the points no other point beats on both cost and quality; the
controller moves a job along it (``best_within``), choosing the best setting whose teacher work it can afford."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from adq.core.errors import InputError
from adq.core.status import Strategy

EPS = 1e-9  # qualities are means of per-prompt grades: equal sums can differ in the last bits


@dataclass(frozen=True, order=True)
class Setting:
    student_steps: int
    k: int
    strategy: str  # Strategy value; "student" and "teacher" name the two baselines
    sigma: float | None  # refinement only
    teacher_steps: int | None  # steps the teacher's schedule is set to (refinement runs about sigma * T of them)

    @property
    def label(self) -> str:
        if self.strategy == "student":
            return f"student S={self.student_steps}"
        if self.strategy == "teacher":
            return f"teacher T={self.teacher_steps}"
        sigma = f" σ={self.sigma:g}" if self.strategy == Strategy.REFINE else ""
        return f"S={self.student_steps} k={self.k} {self.strategy}{sigma} T={self.teacher_steps}"


@dataclass(frozen=True)
class Point:
    setting: Setting
    mean_steps: float
    teacher_steps_per_image: float  # the teacher's counted steps per routed image (its work per teacher job)
    quality: float  # the judge's mean
    seconds: float | None = None  # measured seconds per image, where timings exist

    @property
    def teacher_work(self) -> float:
        """Teacher steps per job, averaged over all jobs: what the teacher pool spends on this setting."""
        return self.setting.k / 100 * self.teacher_steps_per_image

    def cost(self, by: str = "steps") -> float:
        if by == "seconds":
            if self.seconds is None:
                raise InputError(f"{self.setting.label} has no measured time: tune again with timings")
            return self.seconds
        return self.mean_steps


def pareto(points: list[Point], by: str = "steps") -> list[Point]:
    """The points no other point beats: none is cheaper (or as cheap) and better (or as good) with one strict.
    Sorted by cost; the quality rises strictly along it."""
    out: list[Point] = []
    for p in sorted(points, key=lambda p: (p.cost(by), -p.quality)):
        if not out or p.quality > out[-1].quality + EPS:
            out.append(p)
    return out


def best_within(points: list[Point], budget: float, by: str = "steps") -> Point | None:
    """The best point whose cost fits the budget (None when none does)."""
    fitting = [p for p in points if p.cost(by) <= budget + EPS]
    return max(fitting, key=lambda p: (round(p.quality / EPS), -p.cost(by)), default=None)


def best_for_work(points: list[Point], student_steps: int, work: float) -> Point | None:
    """The controller's choice: among adaptive settings with the job's student steps (its student already ran),
    the best whose teacher work per job fits ``work`` (teacher steps per job the pool can afford)."""
    fitting = [
        p
        for p in points
        if p.setting.student_steps == student_steps
        and p.setting.strategy in (Strategy.REFINE, Strategy.REGENERATE)
        and p.teacher_work <= work + EPS
    ]
    return max(fitting, key=lambda p: (round(p.quality / EPS), -p.teacher_work), default=None)


# -- the file `adq tune` writes and `adq tune --record` stores ---------------------------------------------------


def to_json(points: list[Point]) -> list[dict]:
    return [asdict(p) for p in points]


def from_json(rows: list[dict]) -> list[Point]:
    return [replace(Point(**{**r, "setting": None}), setting=Setting(**r["setting"])) for r in rows]


def load(path: Path) -> tuple[str, list[Point]]:
    """The preset and frontier of a tune's ``frontier.json``."""
    try:
        data = json.loads(Path(path).read_text())
        return data["preset"], from_json(data["frontier"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a frontier written by `adq tune` ({exc})") from None

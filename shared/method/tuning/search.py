"""`adq tune`: the best settings of the method for a budget, searched on a validation prompt set.

The search space is student steps S, the teacher's share k, its strategy, the rollback sigma and teacher steps T.
No point runs a cascade of its own: every model pass runs once and every point is a mix of their per-prompt results.

1. one student pass per S: images, the router's scores, the judge's grades, counted steps and seconds;
2. one regeneration pass per T over every prompt: it serves every k and S, and is the teacher-only baseline;
3. one refinement pass per (S, sigma, T), over only the prompts the largest k below 100 routes;
4. each point routes the prompts scoring under tau_k (the k-th percentile of this set's student scores, what a
   calibration on it records) to the teacher's result and keeps the student's for the rest.

A pass is saved whole as it finishes (``os.replace``), so a stopped tune runs again from where it stopped. The
judge is a second estimator that never routes, so the tune is not graded by the router's own scorer.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from adq.core.errors import InputError
from adq.core.status import Strategy
from adq.method import percentiles as cal
from adq.method.frontier import Point, Setting
from adq.method.presets import EstimatorSpec, Preset, get_preset

STUDENT_SEED = 300_000  # prompt i is served with seed STUDENT_SEED + i (the teacher adds its own offset)


@dataclass(frozen=True)
class Grid:
    student_steps: tuple[int, ...]
    teacher_steps: tuple[int, ...] = (4, 8, 12, 16, 20)
    sigmas: tuple[float, ...] = (0.3, 0.5, 0.7)
    ks: tuple[int, ...] = tuple(range(0, 101, 10))
    strategies: tuple[str, ...] = (Strategy.REGENERATE.value, Strategy.REFINE.value)


@dataclass
class Pass:
    """One model pass over (a subset of) the prompts: per prompt, its judge grade, router score, counted steps."""

    index: np.ndarray  # which prompts it covers
    judge: np.ndarray
    score: np.ndarray
    steps: np.ndarray
    seconds: float  # wall time of the pass
    images: list | None = None  # student passes keep theirs for refinement


class Cache:
    """One folder per (preset, prompts, seed, judge): a pass is a file, written whole, so a rerun resumes."""

    def __init__(self, root: Path, key: str):
        self.dir = root / "cache" / key
        self.dir.mkdir(parents=True, exist_ok=True)

    def load(self, name: str) -> Pass | None:
        path = self.dir / f"{name}.npz"
        if not path.is_file():
            return None
        with np.load(path) as z:
            images = None
            if "pixels" in z:
                from PIL import Image

                images = [Image.fromarray(a) for a in z["pixels"]]
            return Pass(z["index"], z["judge"], z["score"], z["steps"], float(z["seconds"]), images)

    def save(self, name: str, p: Pass) -> None:
        arrays = dict(index=p.index, judge=p.judge, score=p.score, steps=p.steps, seconds=p.seconds)
        if p.images is not None:
            arrays["pixels"] = np.stack([np.asarray(im.convert("RGB")) for im in p.images])
        tmp = self.dir / f".{name}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, self.dir / f"{name}.npz")


def check_search(preset: Preset, prompts: list[str], grid: Grid, judge: EstimatorSpec | None) -> EstimatorSpec:
    if len(prompts) < 20:
        raise InputError(f"{len(prompts)} prompts: a tune needs at least 20 (a few hundred give useful intervals)")
    if preset.grammar == "shapes":
        from adq.method.shapes import world

        for prompt in prompts:
            try:
                world.parse(prompt)
            except ValueError:
                raise InputError(f"preset {preset.name} takes shapes prompts only; {prompt!r} is not one") from None
    for name, values, lo, hi in (
        ("student steps", grid.student_steps, 1, 200),
        ("teacher steps", grid.teacher_steps, 1, 200),
    ):
        if not values or any(not lo <= v <= hi for v in values):
            raise InputError(f"{name} {list(values)}: each must be between {lo} and {hi}")
    if any(not 0 < s <= 1 for s in grid.sigmas) or any(not 0 <= k <= 100 for k in grid.ks):
        raise InputError(f"sigmas {list(grid.sigmas)} must lie in (0, 1] and ks {list(grid.ks)} in 0..100")
    judge = judge or preset.judge
    if judge is None:
        raise InputError(f"preset {preset.name} names no judge: pass --judge (an estimator that does not route)")
    if judge == preset.estimator:
        raise InputError("the judge must not be the router's own estimator: the tune would grade its own routing")
    return judge


def judge_spec(name: str | None) -> EstimatorSpec | None:
    """--judge: an estimator kind (shapes-judge, imagereward, ...) or a python factory ``module:callable``."""
    if name is None:
        return None
    if ":" in name:
        return EstimatorSpec("python", factory=name)
    from adq.method.presets import ESTIMATOR_KINDS

    if name not in ESTIMATOR_KINDS or name in ("python", "pipeline"):
        raise InputError(
            f"--judge {name!r}: name an estimator kind ({', '.join(ESTIMATOR_KINDS[:6])}) or module:callable"
        )
    return EstimatorSpec(name)


class Search:
    """The passes of one tune, each run at most once (and at most once ever, with the cache)."""

    def __init__(self, preset: Preset, prompts: list[str], judge: EstimatorSpec, cache: Cache, batch: int):
        from adq.method.models import registry
        from adq.method.models.estimators import load_estimator

        self.preset, self.prompts, self.cache, self.batch = preset, prompts, cache, batch
        self.seeds = [STUDENT_SEED + i for i in range(len(prompts))]
        self.student, self.teacher = registry.student(preset.name), registry.teacher(preset.name)
        self.router = registry.estimator(preset.name)
        self.judge = load_estimator(judge, getattr(self.student, "device", None))
        self.ran: list[str] = []  # the passes this call ran (the rest came from the cache)

    def _pass(self, name: str, index: np.ndarray, make, keep_images: bool = False) -> Pass:
        cached = self.cache.load(name)
        if cached is not None:
            return cached
        images, steps, t0 = [], [], time.perf_counter()
        for i in tqdm(range(0, len(index), self.batch), desc=name, leave=False):
            outs = make(index[i : i + self.batch])
            images += [o.image for o in outs]
            steps += [o.steps for o in outs]
        seconds = time.perf_counter() - t0
        prompts = [self.prompts[i] for i in index]
        p = Pass(
            index,
            np.array(self.judge.score(prompts, images), float),
            np.array(self.router.score(prompts, images), float),
            np.array(steps, float),
            seconds,
            images if keep_images else None,
        )
        self.cache.save(name, p)
        self.ran.append(name)
        return p

    def student_pass(self, S: int) -> Pass:
        w, h = self.preset.student_size
        g = self.preset.student_guidance
        every = np.arange(len(self.prompts))

        def make(idx):
            ps, ss = [self.prompts[i] for i in idx], [self.seeds[i] for i in idx]
            return self.student.generate_batch(ps, ss, steps=S, guidance=g, width=w, height=h)

        return self._pass(f"student-S{S}", every, make, keep_images=True)

    def regenerate_pass(self, T: int) -> Pass:
        g, every = self.preset.teacher_guidance, np.arange(len(self.prompts))

        def make(idx):
            ps, ss = [self.prompts[i] for i in idx], [self.seeds[i] for i in idx]
            if hasattr(self.teacher, "regenerate_batch"):
                return self.teacher.regenerate_batch(ps, ss, steps=T, guidance=g)
            return [self.teacher.regenerate(p, steps=T, guidance=g, seed=s) for p, s in zip(ps, ss)]

        return self._pass(f"regenerate-T{T}", every, make)

    def refine_pass(self, S: int, student: Pass, index: np.ndarray, sigma: float, T: int) -> Pass:
        g = self.preset.teacher_guidance

        def make(idx):
            ps, ss = [self.prompts[i] for i in idx], [self.seeds[i] for i in idx]
            ims = [student.images[i] for i in idx]
            if hasattr(self.teacher, "refine_batch"):
                return self.teacher.refine_batch(ims, ps, ss, steps=T, sigma=sigma, guidance=g)
            return [
                self.teacher.refine(im, p, steps=T, sigma=sigma, guidance=g, seed=s) for im, p, s in zip(ims, ps, ss)
            ]

        return self._pass(f"refine-S{S}-sigma{sigma:g}-T{T}", index, make)


def cache_key(preset: Preset, prompts: list[str], judge: EstimatorSpec) -> str:
    from adq.method.presets import to_entry

    blob = json.dumps([to_entry(preset), prompts, STUDENT_SEED, repr(judge)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def search(preset: Preset, prompts: list[str], grid: Grid, judge: EstimatorSpec, out_dir: Path, batch: int = 50):
    """Every point of the grid, with the per-prompt grades that each frontier point's interval needs."""
    s = Search(preset, prompts, judge, Cache(out_dir, cache_key(preset, prompts, judge)), batch)
    n = len(prompts)
    students = {S: s.student_pass(S) for S in tqdm(grid.student_steps, desc="student passes")}
    regens = {T: s.regenerate_pass(T) for T in tqdm(grid.teacher_steps, desc="regeneration passes")}
    points: list[Point] = []
    grades: dict[Setting, np.ndarray] = {}

    def add(setting: Setting, grade: np.ndarray, steps: np.ndarray, teacher_per_image: float, seconds: float):
        grades[setting] = grade
        points.append(Point(setting, float(steps.mean()), teacher_per_image, float(grade.mean()), seconds / n))

    for T, r in regens.items():  # the teacher alone
        add(Setting(0, 100, "teacher", None, T), r.judge, r.steps, float(r.steps.mean()), r.seconds)
    refine_ks = [k for k in grid.ks if k < 100] or [100]
    for S, st in students.items():
        add(Setting(S, 0, "student", None, None), st.judge, st.steps, 0.0, st.seconds)
        pct = cal.from_scores(st.score)
        routed = {k: np.array([cal.below_cutoff(float(x), pct.tau(k), k) for x in st.score]) for k in grid.ks}
        subset = np.flatnonzero(routed[max(refine_ks)])
        teachers = {(Strategy.REGENERATE.value, None, T): r for T, r in regens.items()}
        if Strategy.REFINE.value in grid.strategies:
            for sigma in tqdm(grid.sigmas, desc=f"refinement passes S={S}"):
                for T in grid.teacher_steps:
                    teachers[(Strategy.REFINE.value, sigma, T)] = s.refine_pass(S, st, subset, sigma, T)
        for (strategy, sigma, T), tp in teachers.items():
            if strategy not in grid.strategies:
                continue
            full_judge = np.full(n, np.nan)
            full_judge[tp.index] = tp.judge
            full_steps = np.zeros(n)
            full_steps[tp.index] = tp.steps
            per_image_s = tp.seconds / max(1, len(tp.index))
            for k in grid.ks if strategy == Strategy.REGENERATE.value else refine_ks:
                mask = routed[k]
                grade = np.where(mask, full_judge, st.judge)
                steps = st.steps + np.where(mask, full_steps, 0.0)
                seconds = st.seconds + mask.sum() * per_image_s
                setting = Setting(S, k, strategy, sigma, T)
                add(setting, grade, steps, float(tp.steps.mean()), seconds)
    return points, grades, s.ran, students


def run(
    preset_name: str,
    prompts_file: str,
    *,
    budgets: tuple[float, ...] = (),
    by: str = "steps",
    judge: str | None = None,
    out_dir: Path = Path(".adq/tune"),
    grid: Grid | None = None,
    batch: int = 50,
    limit: int | None = None,
    heldout_file: str | None = None,
) -> dict:
    """`adq tune`: search, then write the frontier, plot, table and one presets file per budget into ``out_dir``."""
    from adq.method.tuning.report import write

    preset = get_preset(preset_name)
    prompts = cal.read_prompts(prompts_file)[:limit]
    grid = grid or Grid(student_steps=(preset.student_steps,))
    spec = check_search(preset, prompts, grid, judge_spec(judge))
    if any(b <= 0 for b in budgets):
        raise InputError(f"budgets {list(budgets)} must be positive")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    points, grades, ran, students = search(preset, prompts, grid, spec, out_dir, batch)
    meta = {
        "n_prompts": len(prompts),
        "prompts_file": str(prompts_file),
        "judge": spec.kind,
        "by": by,
        "grid": grid.__dict__,
        "passes_run": ran,
        "search_s": time.perf_counter() - t0,
    }
    result = write(preset, points, grades, students, budgets, by, out_dir, meta)
    if heldout_file:
        from adq.method.tuning.heldout import heldout

        result["heldout"] = heldout(preset.name, heldout_file, result["recommended"], spec, out_dir)
    return result

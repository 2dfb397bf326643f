"""The adaptive student->teacher cascade as plain functions (arXiv 2312.10835, Algorithm 1).

1. generate: the student makes an image in a few steps.
2. score: the quality estimator scores it against the prompt.
3. decide: below the cut-off tau (the k-th percentile of calibrated student scores) the teacher improves it.
4. improve: refine (roll the image back by sigma and denoise with img2img) or regenerate from scratch.

The workers call these steps one stage at a time; ``run`` chains them in one process. Both paths give the same
final image for the same seed, since the teacher is seeded too and stored images are lossless PNG.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from adq.core.status import Route, Strategy
from adq.method.params import JobParams
from adq.method.percentiles import below_cutoff


@dataclass(frozen=True)
class Inputs:
    """A job's input images, decoded: image-to-image's ``init``, the ControlNet's ``control`` (None: not given)."""

    init: object = None
    control: object = None

    def student_call(self, params: JobParams) -> dict:
        if self.init is None and self.control is None:
            return {}
        return {"init_image": self.init, "strength": params.strength, "control_image": self.control}


NO_INPUTS = Inputs()


@dataclass(frozen=True)
class GenerateResult:
    image: object
    steps: int
    seconds: float


@dataclass(frozen=True)
class ScoreResult:
    score: float
    seconds: float


@dataclass(frozen=True)
class Decision:
    route: Route
    score: float
    tau: float | None  # the tau used
    k: int  # the share used: the job's k, or the controller's effective k
    tau_source: str = "calibration"  # "live" once enough live scores exist (adq.control)
    control_policy: str = "fixed"
    reason: str = ""
    point: dict | None = None  # the tuned setting the controller moved the job to (k, strategy, sigma, T), if any

    @property
    def teacher_used(self) -> bool:
        return self.route is Route.TEACHER


@dataclass(frozen=True)
class ImproveResult:
    image: object
    strategy: str
    sigma: float | None  # None for regeneration, which rolls back nothing
    steps: int
    seconds: float


@dataclass(frozen=True)
class CascadeRecord:
    prompt: str
    seed: int
    student_image: object
    final_image: object
    score: float
    tau: float | None
    k: int
    teacher_used: bool
    strategy: str | None
    sigma: float | None
    student_steps: int
    teacher_steps: int
    timings: dict = field(default_factory=dict)  # seconds: generate, score, teacher

    @property
    def total_steps(self) -> int:
        return self.student_steps + self.teacher_steps


def generate(student, params: JobParams, images: Inputs = NO_INPUTS) -> GenerateResult:
    t0 = time.perf_counter()
    out = student.generate(
        params.prompt,
        steps=params.student_steps,
        guidance=params.student_guidance,
        width=params.width,
        height=params.height,
        seed=params.seed,
        **images.student_call(params),
        **negative(params),
    )
    return GenerateResult(out.image, out.steps, time.perf_counter() - t0)


def negative(params: JobParams) -> dict:
    """The job's negative prompt as a keyword, only when it has one (a plugin's model may take none)."""
    return {} if params.negative_prompt is None else {"negative_prompt": params.negative_prompt}


def score(estimator, prompt: str, image) -> ScoreResult:
    t0 = time.perf_counter()
    (value,) = estimator.score([prompt], [image])
    return ScoreResult(value, time.perf_counter() - t0)


def decide(score_value: float, tau: float | None, k: int) -> Decision:
    route = Route.TEACHER if below_cutoff(score_value, tau, k) else Route.FINISH
    return Decision(route, score_value, tau, k)


def improve(teacher, student_image, params: JobParams, images: Inputs = NO_INPUTS) -> ImproveResult:
    """Refine keeps the job's control image (the ControlNet guides the rollback too); regenerate runs the job's
    own mode on the teacher: image-to-image from the input image, with the control image when there is one."""
    t0 = time.perf_counter()
    control = {"control_image": images.control} if images.control is not None else {}
    if params.strategy == Strategy.REFINE:
        out = teacher.refine(
            student_image,
            params.prompt,
            steps=params.teacher_steps,
            sigma=params.sigma,
            guidance=params.teacher_guidance,
            seed=params.seed,
            **control,
            **negative(params),
        )
        sigma = params.sigma
    else:
        out = teacher.regenerate(
            params.prompt,
            steps=params.teacher_steps,
            guidance=params.teacher_guidance,
            seed=params.seed,
            **images.student_call(params),
            **negative(params),
        )
        sigma = None
    return ImproveResult(out.image, Strategy(params.strategy).value, sigma, out.steps, time.perf_counter() - t0)


def improve_batch(teacher, batch: list[tuple[JobParams, object]]) -> list[ImproveResult]:
    """Text-only jobs with the same teacher settings in one call, each with its own seeded generator. A teacher
    without batch methods (a plugin's, the null one) runs them one by one."""
    t0 = time.perf_counter()
    first = batch[0][0]
    prompts, seeds = [p.prompt for p, _ in batch], [p.seed for p, _ in batch]
    call = dict(steps=first.teacher_steps, guidance=first.teacher_guidance, **negative(first))
    if first.strategy == Strategy.REFINE and hasattr(teacher, "refine_batch"):
        outs = teacher.refine_batch([im for _, im in batch], prompts, seeds, sigma=first.sigma, **call)
    elif first.strategy != Strategy.REFINE and hasattr(teacher, "regenerate_batch"):
        outs = teacher.regenerate_batch(prompts, seeds, **call)
    else:
        return [improve(teacher, image, params) for params, image in batch]
    sigma = first.sigma if first.strategy == Strategy.REFINE else None
    seconds = (time.perf_counter() - t0) / len(batch)
    return [ImproveResult(o.image, Strategy(first.strategy).value, sigma, o.steps, seconds) for o in outs]


def run(
    params: JobParams, tau: float | None, *, student, estimator, teacher, images: Inputs = NO_INPUTS
) -> CascadeRecord:
    """The whole cascade in one process, for notebooks, calibration checks and benchmarks."""
    gen = generate(student, params, images)
    scored = score(estimator, params.prompt, gen.image)
    decision = decide(scored.score, tau, params.k)
    better = improve(teacher, gen.image, params, images) if decision.teacher_used else None
    return CascadeRecord(
        prompt=params.prompt,
        seed=params.seed,
        student_image=gen.image,
        final_image=better.image if better else gen.image,
        score=scored.score,
        tau=tau,
        k=params.k,
        teacher_used=decision.teacher_used,
        strategy=better.strategy if better else None,
        sigma=better.sigma if better else None,
        student_steps=gen.steps,
        teacher_steps=better.steps if better else 0,
        timings={"generate": gen.seconds, "score": scored.seconds, "teacher": better.seconds if better else 0.0},
    )

"""The paper's own Python API (yandex-research/adaptive-diffusion), drop-in: ``AdaptiveDiffusionPipeline``.

Build it from diffusers pipelines of any family and an estimator, as the paper's README does; ``__call__`` runs
``adq.method.cascade.run``, the same engine the workers run stage by stage. The object declares a preset (``name=``),
so ``adq worker student|teacher --pipeline module:attr`` serves this very object to the queues.

The reference's known defects are fixed (docs/paper-api.md): the teacher is seeded, the
student image keeps its size, any k from 0 to 100 works, calibration samples under the serving settings, and
sigma = 0 and sigma = 1 are handled (refused, and exactly T steps).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import replace
from pathlib import Path

from adq.core.errors import InputError
from adq.core.resources import data_path
from adq.core.status import Strategy
from adq.method import cascade
from adq.method import percentiles as cal
from adq.method.presets import EstimatorSpec, ModelSpec, Preset, register

log = logging.getLogger(__name__)
DEFAULT_PROMPTS = ("prompts", "calibration.txt")  # under the data folder (adq.core.resources)
SETTING_KEYS = ("steps", "guidance", "width", "height")  # the student settings a calibration must match


class AdaptiveDiffusionPipeline:
    """``AdaptiveDiffusionPipeline(estimator=..., student=..., teacher=...)``.

    ``student``: a diffusers text-to-image pipeline; ``teacher``: an image-to-image one; ``estimator``: ImageReward's
    model (``score(prompt, image) -> float``) or a batched ``score(prompts, images) -> list[float]``. ``regenerator``
    (optional): a text-to-image pipeline for the regenerate strategy (default: a view of the teacher's weights).
    ``name`` is the preset this object serves as; the other keywords are its serving defaults."""

    def __init__(
        self,
        estimator,
        student,
        teacher,
        regenerator=None,
        *,
        name: str = "adaptive",
        num_inference_steps_student: int = 2,
        student_guidance: float = 0.0,
        num_inference_steps_teacher: int = 4,
        teacher_guidance: float = 8.0,
        sigma: float = 0.4,
        k: int = 50,
        strategy: str = "refine",
        teacher_size: tuple[int, int] | None = None,
    ):
        from adq.method.models import registry
        from adq.method.models.diffusion import DiffusionStudent, DiffusionTeacher, default_size
        from adq.method.models.estimators import as_batched

        # 1. Check inputs: a model that cannot play its role fails here, naming it.
        for role, obj in (("student", student), ("teacher", teacher)):
            if not callable(obj) or not hasattr(obj, "components"):
                raise InputError(f"{role} must be a diffusers pipeline object, got {type(obj).__name__}")
        self.estimator = as_batched(estimator)
        self.student = DiffusionStudent.of(student)
        self.teacher = DiffusionTeacher.of(teacher, regenerator, tuple(teacher_size) if teacher_size else None)
        self.percentiles: cal.Percentiles | None = None
        width, height = default_size(student)
        # 2. The preset this object serves as: the models are the objects; the settings are the serving defaults.
        self.preset = Preset(
            name=name,
            student=ModelSpec(source=f"pipeline:{name}/student", label=type(student).__name__),
            teacher=ModelSpec(source=f"pipeline:{name}/teacher", label=type(teacher).__name__),
            student_steps=num_inference_steps_student,
            student_guidance=student_guidance,
            student_size=(width, height),
            teacher_steps=num_inference_steps_teacher,
            teacher_guidance=teacher_guidance,
            teacher_size=tuple(teacher_size) if teacher_size else (width, height),
            sigma=sigma,
            estimator=EstimatorSpec("pipeline"),
            k=k,
            strategy=Strategy(strategy),
            origin="a Python pipeline object",
        )
        self._register()
        registry.serve(name, self.student, self.teacher, self.estimator)

    @property
    def name(self) -> str:
        return self.preset.name

    def _register(self) -> None:
        from adq.method.params import resolve

        register(self.preset)
        resolve("check", preset=self.name, seed=0)  # the serving defaults themselves must be valid

    # -- calibration ------------------------------------------------------------------------------------------------
    def calc_score_percentiles(
        self,
        file_path: str | Path,
        num_inference_steps_student: int | None = None,
        n_samples: int = 5000,
        prompts_path: str | Path | None = None,
        student_guidance: float | None = None,
        width: int | None = None,
        height: int | None = None,
        seed: int = 0,
        batch_size: int = 8,
        progress: bool = True,
    ) -> dict[str, float]:
        """Load the percentiles at ``file_path``, or sample the student ``n_samples`` times under the serving
        settings, score the images and write the file (the reference's keys "10".."90", every integer percentile
        and the settings sampled). The settings become this object's serving defaults, so jobs match them."""
        from tqdm import tqdm

        from adq.method.params import resolve

        path = Path(file_path)
        if path.is_file():
            self.percentiles = cal.load(path)
            self._adopt(self.percentiles.meta.get("student_settings"))
            return {str(k): v for k, v in self.percentiles.values.items()}
        # 1. Check inputs before any model runs.
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise InputError(f"n_samples={n_samples!r} must be a positive integer")
        if prompts_path is None:
            prompts_path = data_path(*DEFAULT_PROMPTS)
            log.warning("no prompts_path given: sampling prompts from the shipped set %s", prompts_path)
            print(f"calc_score_percentiles: no prompts_path given, using the shipped prompt set {prompts_path}")
        prompts = cal.read_prompts(prompts_path)
        overrides = {
            "student_steps": num_inference_steps_student,
            "student_guidance": student_guidance,
            "width": width,
            "height": height,
        }
        jobs = [
            resolve(prompts[i % len(prompts)], preset=self.name, seed=seed + i, **overrides) for i in range(n_samples)
        ]
        # 2. Sample one image at a time (cascade.generate), score each chunk of batch_size in one estimator call.
        scores: list[float] = []
        bar = tqdm(total=n_samples, desc=f"calibrating {self.name}", unit="img", disable=not progress)
        for start in range(0, n_samples, batch_size):
            chunk = jobs[start : start + batch_size]
            images = [cascade.generate(self.student, p).image for p in chunk]
            scores += self.estimator.score([p.prompt for p in chunk], images)
            bar.update(len(chunk))
        bar.close()
        # 3. Write the file and serve under these settings from now on.
        settings = _settings_of(jobs[0])
        meta = {"student_settings": settings, "n_samples": n_samples, "seed": seed, "prompts_file": str(prompts_path)}
        self.percentiles = cal.from_scores(scores, meta)
        cal.save(self.percentiles, path)
        self._adopt(settings)
        return {str(k): v for k, v in self.percentiles.values.items()}

    def _adopt(self, settings: dict | None) -> None:
        if not settings:
            return
        self.preset = replace(
            self.preset,
            student_steps=int(settings["steps"]),
            student_guidance=float(settings["guidance"]),
            student_size=(int(settings["width"]), int(settings["height"])),
        )
        self._register()

    # -- one image --------------------------------------------------------------------------------------------------
    def __call__(
        self,
        prompt: str,
        num_inference_steps_student: int | None = None,
        student_guidance: float | None = None,
        num_inference_steps_teacher: int | None = None,
        teacher_guidance: float | None = None,
        sigma: float | None = None,
        k: int | None = None,
        seed: int = 0,
        strategy: str | None = None,
        width: int | None = None,
        height: int | None = None,
        return_record: bool = False,
        negative_prompt: str | None = None,
    ):
        """The image (PIL), or ``(image, record)`` with ``return_record=True``: the score, tau, whether the teacher
        ran, steps and timings (``adq.method.cascade.CascadeRecord``)."""
        from adq.method.params import resolve

        # 1. Check inputs: ValueError (InputError) naming the value, before any model runs.
        if sigma is not None and not (isinstance(sigma, (int, float)) and 0 < sigma <= 1 and math.isfinite(sigma)):
            raise InputError(
                f"sigma={sigma!r} must be in (0, 1]: 0 would roll nothing back (the reference divides by 0)"
            )
        params = resolve(
            prompt,
            preset=self.name,
            seed=seed,
            k=k,
            sigma=sigma,
            strategy=strategy,
            student_steps=num_inference_steps_student,
            student_guidance=student_guidance,
            teacher_steps=num_inference_steps_teacher,
            teacher_guidance=teacher_guidance,
            width=width,
            height=height,
            negative_prompt=negative_prompt,
        )
        # 2. The cut-off for this k, from a calibration sampled under these very student settings.
        tau = self._tau(params)
        # 3. The cascade: student, score, decide, improve.
        record = cascade.run(params, tau, student=self.student, estimator=self.estimator, teacher=self.teacher)
        return (record.final_image, record) if return_record else record.final_image

    def _tau(self, params) -> float | None:
        if params.k in (0, 100):
            return None
        if self.percentiles is None:
            raise InputError("no calibration yet: call calc_score_percentiles(file_path, ...) first")
        found = self.percentiles.meta.get("student_settings")
        wanted = _settings_of(params)
        if found is None:
            warnings.warn(
                "the percentiles file records no student settings (the reference's format): tau is used as given",
                stacklevel=3,
            )
        elif any(_differs(found[key], wanted[key]) for key in SETTING_KEYS):
            diff = ", ".join(
                f"{key} {found[key]} -> {wanted[key]}" for key in SETTING_KEYS if found[key] != wanted[key]
            )
            raise InputError(
                f"the calibration was sampled under other student settings ({diff}); "
                f"run calc_score_percentiles with a new file_path under the settings you serve"
            )
        return self.percentiles.tau(params.k)


def _settings_of(params) -> dict:
    return {
        "steps": params.student_steps,
        "guidance": round(float(params.student_guidance), 6),
        "width": params.width,
        "height": params.height,
    }


def _differs(a, b) -> bool:
    return not math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-6)


def load(target: str) -> AdaptiveDiffusionPipeline:
    """``package.module:attr``: an AdaptiveDiffusionPipeline, or a zero-argument callable returning one."""
    from adq.core.plugins import load_object

    obj = load_object(target, "--pipeline")
    if not isinstance(obj, AdaptiveDiffusionPipeline) and callable(obj):
        obj = obj()
    if not isinstance(obj, AdaptiveDiffusionPipeline):
        raise InputError(f"--pipeline {target!r} is a {type(obj).__name__}, not an AdaptiveDiffusionPipeline")
    return obj

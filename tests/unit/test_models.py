"""Model tier 1: tiny real diffusers components on the CPU (the slow/GPU tier is marked)."""

import time

import numpy as np
import pytest

from adq.core.errors import ModelUnavailable
from adq.method import cascade
from adq.method.models import registry
from adq.method.models.diffusion import steps_for_strength
from tests.factories import params


@pytest.mark.parametrize("sigma", [round(0.01 * i, 2) for i in range(1, 101)])
def test_strength_gives_exactly_t_steps_formula(sigma):
    from diffusers import FluxImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

    for t in range(1, 51):
        n = steps_for_strength(t, sigma, max_steps=10_000)
        assert min(int(n * sigma), n) == t, (t, sigma, n)  # diffusers' own expression for steps run (UNet families)
        assert steps_for_strength(t, sigma, StableDiffusionXLImg2ImgPipeline, max_steps=10_000) == n
        # Flow-matching families run n - int(n - n * strength): probed from the pipeline class itself.
        m = steps_for_strength(t, sigma, FluxImg2ImgPipeline, max_steps=10_000)
        assert m - int(max(m - m * sigma, 0)) == t, (t, sigma, m)
        assert m == t or (m - 1) - int(max((m - 1) - (m - 1) * sigma, 0)) < t  # the smallest such n


def test_flow_matching_and_unet_families_need_different_step_counts():
    from diffusers import FluxImg2ImgPipeline, StableDiffusion3Img2ImgPipeline, ZImageImg2ImgPipeline

    assert steps_for_strength(4, 0.3) == 14  # int(14 * 0.3) = 4
    for cls in (FluxImg2ImgPipeline, StableDiffusion3Img2ImgPipeline, ZImageImg2ImgPipeline):
        assert steps_for_strength(4, 0.3, cls) == 11  # 11 - int(7.7) = 4; at 14 it would run 5


@pytest.mark.parametrize("sigma", [1e-300, 5e-324, 1e-8, 0.0, -0.5, 1.5, float("nan"), float("inf")])
def test_hostile_sigmas_are_refused_at_once(sigma):
    from adq.core.errors import InputError

    t0 = time.perf_counter()
    with pytest.raises(InputError, match="sigma"):
        steps_for_strength(200, sigma)
    assert time.perf_counter() - t0 < 1.0  # closed form: no loop that grows with 1/sigma


def test_sigma_floor_follows_max_steps():
    from adq.core.errors import InputError

    assert steps_for_strength(200, 1.0) == 200
    assert steps_for_strength(100, 0.5, max_steps=200) == 200
    assert steps_for_strength(100, 0.4, max_steps=200) == 200  # capped: its 200 scheduler steps run 80 of the 100
    with pytest.raises(InputError, match="at least 0.005"):
        steps_for_strength(1, 0.004, max_steps=200)


def test_reference_formula_runs_extra_step_at_sigma_one():
    t = 4
    assert min(int(int(t / 1.0 + 1) * 1.0), int(t / 1.0 + 1)) == t + 1  # the fault this replaces
    assert steps_for_strength(t, 1.0) == t


@pytest.fixture(scope="module")
def tiny():
    registry.clear()
    yield registry.student("tiny"), registry.estimator("tiny"), registry.teacher("tiny")


def _unet_calls(pipe):
    calls = []
    handle = pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("t, sigma", [(1, 0.3), (4, 0.3), (12, 0.7), (5, 1.0), (7, 0.55), (3, 0.05)])
def test_refinement_runs_exactly_t_teacher_steps(tiny, t, sigma):
    student, _, teacher = tiny
    p = params(teacher_steps=t, sigma=sigma, teacher_guidance=0.0)  # no CFG: one UNet call per step
    image = cascade.generate(student, p).image
    calls, handle = _unet_calls(teacher.pipe)
    try:
        out = cascade.improve(teacher, image, p)
    finally:
        handle.remove()
    assert out.steps == t and len(calls) == t


def test_regeneration_runs_t_steps(tiny):
    _, _, teacher = tiny
    out = cascade.improve(teacher, None, params(strategy="regenerate", teacher_steps=6))
    assert (out.steps, out.sigma, out.strategy, out.image.size) == (6, None, "regenerate", (32, 32))


def test_same_seed_same_final_image(tiny):
    student, estimator, teacher = tiny
    p = params(k=100, seed=11)  # k=100: the teacher always runs
    a = cascade.run(p, None, student=student, estimator=estimator, teacher=teacher)
    b = cascade.run(p, None, student=student, estimator=estimator, teacher=teacher)
    assert a.teacher_used and np.array_equal(np.asarray(a.final_image), np.asarray(b.final_image))
    c = cascade.run(params(k=100, seed=12), None, student=student, estimator=estimator, teacher=teacher)
    assert not np.array_equal(np.asarray(a.final_image), np.asarray(c.final_image))
    assert (a.student_steps, a.teacher_steps, a.total_steps) == (2, 4, 6)
    assert set(a.timings) == {"generate", "score", "teacher"}


def test_student_above_tau_is_final(tiny):
    student, estimator, teacher = tiny
    rec = cascade.run(params(k=0), None, student=student, estimator=estimator, teacher=teacher)
    assert not rec.teacher_used and rec.final_image is rec.student_image and rec.teacher_steps == 0


def test_estimator_is_batched_and_order_preserving(tiny):
    student, estimator, _ = tiny
    prompts = ["a red fox", "a lighthouse", "a cup of coffee"]
    images = [cascade.generate(student, params(p)).image for p in prompts]
    batch = estimator.score(prompts, images)
    single = [estimator.score([p], [im])[0] for p, im in zip(prompts, images)]
    assert batch == pytest.approx(single, abs=1e-5) and len(set(batch)) == 3


@pytest.mark.parametrize("preset, label", [("sdxl-turbo", "SDXL-Turbo"), ("lcm-sdxl", "LCM-SDXL")])
def test_real_weights_fail_fast_with_instructions(preset, label, tmp_path):
    from tests.helpers import configured

    with configured(ADQ_MODEL_DIR=str(tmp_path), ADQ_ALLOW_DOWNLOADS="false", HF_HUB_OFFLINE="1"):
        registry.clear()
        start = time.monotonic()
        with pytest.raises(ModelUnavailable) as err:
            registry.student(preset)
        assert time.monotonic() - start < 10
    message = str(err.value)
    assert label in message and "ADQ_MODEL_DIR" in message and "ADQ_ALLOW_DOWNLOADS" in message


def test_imagereward_missing_checkpoint_fails_fast(tmp_path):
    from adq.method.models.estimators import load_estimator
    from tests.helpers import configured

    with (
        configured(ADQ_MODEL_DIR=str(tmp_path), ADQ_IMAGEREWARD_CHECKPOINT=str(tmp_path / "ImageReward.pt")),
        pytest.raises(ModelUnavailable, match="ADQ_IMAGEREWARD_CHECKPOINT"),
    ):
        load_estimator("imagereward", None)


def test_worker_preflight_names_missing_weights(tmp_path):
    from adq.workers.launch import preflight
    from tests.helpers import configured

    with (
        configured(ADQ_PRESET="sdxl-turbo", ADQ_MODEL_DIR=str(tmp_path)),
        pytest.raises(ModelUnavailable, match="SDXL-refiner"),
    ):
        preflight("teacher")


def test_a_student_batch_gives_each_job_its_own_seeded_image(tiny):
    """Micro-batching (ADQ_STUDENT_BATCH_MAX > 1): each job's noise comes from its own seed, so a batched image is
    the single run's image up to float rounding in batched kernels (why batching is off by default)."""
    from adq.jobs.runner import _generate

    jobs_ = [
        params("a red fox at sunset", seed=1),
        params("a blue bird", seed=2),
        params("a red fox at sunset", seed=3),
    ]
    batched = _generate(registry, "tiny", None, cascade.NO_INPUTS, jobs_)
    singles = [cascade.generate(tiny[0], p) for p in jobs_]
    for b, one in zip(batched, singles):
        assert b.steps == one.steps == jobs_[0].student_steps
        diff = np.abs(np.asarray(b.image, dtype=int) - np.asarray(one.image, dtype=int)).max()
        assert diff <= 2, diff
    # Different seeds, different images: the batch did not reuse one job's noise for another.
    assert not np.array_equal(np.asarray(batched[0].image), np.asarray(batched[2].image))


def test_scores_in_one_batch_match_scores_one_at_a_time(tiny):
    from adq.jobs.runner import _score

    images = [cascade.generate(tiny[0], params(seed=s)).image for s in (1, 2, 3)]
    prompts = ["a red fox at sunset", "a blue bird", "a green tree"]
    together = _score(registry, "tiny", list(zip(prompts, images)))
    alone = [_score(registry, "tiny", [(p, im)])[0] for p, im in zip(prompts, images)]
    assert together == pytest.approx(alone, abs=1e-5)

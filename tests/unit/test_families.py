"""Model tier 1 for every family twin (shared/method/models/twins.py) through the same adapters the workers use: the
auto-pipelines load each family, steps are counted as they run, exactly T teacher steps run on refine, the seed
fixes both stages, cancel stops at the next step, and a LoRA student shares its teacher's base."""

from __future__ import annotations

import numpy as np
import pytest

from adq.core.errors import Cancelled
from adq.method import cancel, cascade
from adq.method.models import pipelines, registry
from tests.factories import params

FAMILY_PRESETS = ["tiny-sd15", "tiny-sd3", "tiny-flux", "tiny-zimage", "tiny-sd15-lora"]


@pytest.fixture(scope="module", autouse=True)
def fresh_models():
    registry.clear()
    yield
    registry.clear()


def _denoiser(pipe):
    return getattr(pipe, "unet", None) or pipe.transformer


def _count_calls(pipe):
    calls = []
    return calls, _denoiser(pipe).register_forward_hook(lambda *a: calls.append(1))


def _pixels(image):
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize("preset", FAMILY_PRESETS)
def test_each_family_refines_with_exactly_t_steps_and_reruns_bit_identically(preset):
    student, teacher = registry.student(preset), registry.teacher(preset)
    assert "Auto" not in type(teacher.pipe).__name__ and "Img2Img" in type(teacher.pipe).__name__
    for t, sigma in [(4, 0.3), (3, 0.7), (5, 1.0)]:
        p = params(preset=preset, teacher_steps=t, sigma=sigma, teacher_guidance=1.0, width=32, height=32)
        first = cascade.generate(student, p)
        assert first.steps == 2 and first.image.size == (32, 32)
        calls, handle = _count_calls(teacher.pipe)
        try:
            out = cascade.improve(teacher, first.image, p)
        finally:
            handle.remove()
        assert out.steps == t and len(calls) == t, (preset, t, sigma, out.steps, len(calls))
        assert out.image.size == (32, 32)
        again = cascade.improve(teacher, cascade.generate(student, p).image, p)
        assert np.array_equal(_pixels(out.image), _pixels(again.image)), "the seed must fix both stages"
    other = cascade.generate(student, params(preset=preset, seed=p.seed + 1, width=32, height=32))
    assert not np.array_equal(_pixels(first.image), _pixels(other.image)), "another seed, another image"


@pytest.mark.parametrize("preset", FAMILY_PRESETS[:4])
def test_each_family_regenerates_with_t_steps_from_the_teachers_own_weights(preset):
    teacher = registry.teacher(preset)
    out = cascade.improve(teacher, None, params(preset=preset, strategy="regenerate", teacher_steps=3))
    assert (out.steps, out.image.size) == (3, (32, 32))
    assert _denoiser(teacher.regenerator.pipe) is _denoiser(teacher.pipe)  # from_pipe: one copy of the weights


@pytest.mark.parametrize("preset", ["tiny-sd3", "tiny-zimage"])
def test_cancel_stops_a_family_run_at_the_next_step(preset):
    teacher = registry.teacher(preset)
    checks = []

    def cancelled_after_two(job_id):
        checks.append(job_id)
        return len(checks) >= 2

    p = params(preset=preset, strategy="regenerate", teacher_steps=6)
    with cancel.watching("job-1", cancelled_after_two), pytest.raises(Cancelled) as caught:
        cascade.improve(teacher, None, p)
    assert caught.value.steps_done == 2


def test_a_lora_student_shares_its_teachers_base():
    student, teacher = registry.student("tiny-sd15-lora"), registry.teacher("tiny-sd15-lora")
    assert student.pipe.unet is teacher.pipe.unet and student.pipe.vae is teacher.pipe.vae
    assert student.role.base is teacher.role.base
    p = params(preset="tiny-sd15-lora", teacher_steps=4, sigma=0.5, width=32, height=32)
    # The LoRA is on for the student's calls and off for the teacher's, whatever ran before.
    with_lora = cascade.generate(student, p).image
    teacher_first = cascade.improve(teacher, with_lora, p).image
    assert np.array_equal(_pixels(cascade.generate(student, p).image), _pixels(with_lora))
    assert np.array_equal(_pixels(cascade.improve(teacher, with_lora, p).image), _pixels(teacher_first))
    # Held bytes: one base plus the adapter, against the base loaded a second time (what sharing saves).
    from diffusers import DiffusionPipeline

    from adq.method.models.weights import locate

    separate = DiffusionPipeline.from_pretrained(locate("tiny:sd15-teacher", "tiny SD1.5"))
    base = pipelines.held_bytes([separate])
    shared = pipelines.held_bytes([student.pipe, teacher.pipe])
    assert base < shared < 1.2 * base, (base, shared)
    assert pipelines.held_bytes([separate, teacher.pipe]) > 1.9 * base


def test_the_lora_and_only_the_lora_changes_the_students_image():
    from adq.method.models.diffusion import _run
    from adq.method.models.pipelines import RolePipe

    student = registry.student("tiny-sd15-lora")
    p = params(preset="tiny-sd15-lora", width=32, height=32)
    [(name, _)] = student.role.adapters

    def generate(adapters):
        role = RolePipe(student.pipe, student.role.base, adapters)
        call = dict(prompt=p.prompt, num_inference_steps=2, guidance_scale=0.0, width=32, height=32)
        return _pixels(_run(role, student.device, p.seed, **call).image)

    with_lora = generate(student.role.adapters)
    assert np.array_equal(with_lora, _pixels(cascade.generate(student, p).image))  # the serving path is this call
    bare = generate(())
    assert not np.array_equal(with_lora, bare)
    assert np.array_equal(generate(((name, 0.0),)), bare)  # at scale 0 the adapter adds nothing


@pytest.mark.parametrize("preset", ["tiny-sd15", "tiny-sd3", "tiny-zimage"])
def test_a_negative_prompt_reaches_both_models_and_a_batch(preset):
    student, teacher = registry.student(preset), registry.teacher(preset)
    plain = params(preset=preset, student_guidance=5.0, teacher_guidance=5.0, teacher_steps=2, width=32, height=32)
    negative = plain.model_copy(update={"negative_prompt": "blurry, watermark"})
    first, avoided = cascade.generate(student, plain), cascade.generate(student, negative)
    assert not np.array_equal(_pixels(first.image), _pixels(avoided.image)), "the student used the negative prompt"
    kept, improved = cascade.improve(teacher, first.image, plain), cascade.improve(teacher, first.image, negative)
    assert not np.array_equal(_pixels(kept.image), _pixels(improved.image)), "the teacher used it too"
    (batched,) = cascade.improve_batch(teacher, [(negative, first.image)] * 2)[:1]
    assert np.abs(_pixels(batched.image) - _pixels(improved.image)).max() <= 1  # a batch of two: one negative

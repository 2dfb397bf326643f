import re

import pytest

from adq.core.errors import InputError
from tests.factories import params


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "   \n"}, "prompt is empty"),
        ({"prompt": "x" * 2001}, "2001 characters"),
        ({"prompt": 42}, "prompt must be a string"),
        ({"k": -1}, "k=-1"),
        ({"k": 101}, "k=101"),
        ({"k": 50.5}, "k must be an integer"),
        ({"k": True}, "k must be an integer"),
        ({"sigma": 0}, "sigma=0.0"),
        ({"sigma": -0.1}, "sigma=-0.1"),
        ({"sigma": 1.01}, "sigma=1.01"),
        ({"sigma": float("nan")}, "sigma must be finite"),
        ({"student_steps": 0}, "student_steps=0"),
        ({"student_steps": -3}, "student_steps=-3"),
        ({"teacher_steps": 10**6}, "teacher_steps=1000000"),
        ({"preset": "sdxl-lightning"}, "unknown preset 'sdxl-lightning'"),
        ({"strategy": "upscale"}, "strategy='upscale'"),
        ({"width": 30}, "width=30 must be a multiple of 8"),
        ({"seed": -1}, "seed=-1"),
        ({"student_guidance": 80.0}, "student_guidance=80.0"),
    ],
)
def test_bad_input_names_the_value(overrides, named):
    with pytest.raises(InputError, match=named.replace("(", r"\(").replace("[", r"\[")):
        params(**overrides)


def test_defaults_come_from_the_preset():
    p = params(preset="sdxl-turbo")
    assert (p.student_steps, p.teacher_steps, p.sigma, p.k, p.width) == (2, 4, 0.3, 50, 512)
    p = params(preset="lcm-sdxl")
    assert (p.student_steps, p.student_guidance, p.teacher_steps, p.sigma) == (4, 8.0, 12, 0.7)


@pytest.mark.parametrize("k", [0, 1, 37, 99, 100])
@pytest.mark.parametrize("sigma", [0.005, 0.5, 1.0])  # 0.005: the floor, 1 / ADQ_MAX_STEPS
def test_every_k_and_sigma_in_range_is_accepted(k, sigma):
    p = params(k=k, sigma=sigma)
    assert (p.k, p.sigma) == (k, sigma)


def test_prompt_is_stripped_and_seed_random_when_unset():
    from adq.method.params import resolve

    a = resolve("  a cat  ")
    assert a.prompt == "a cat"
    seeds = {resolve("a cat").seed for _ in range(5)}
    assert all(isinstance(s, int) and 0 <= s < 2**31 for s in seeds)
    assert len(seeds) > 1  # drawn at random: five equal draws from 2**31 would mean a fixed seed
    assert params().student_hash() == params(seed=99).student_hash()  # the seed is not a student setting
    assert params().student_hash() != params(student_steps=3).student_hash()


def test_a_sigma_under_its_floor_is_refused_at_submit_not_on_the_teacher():
    """The floor follows ADQ_MAX_STEPS (issue 23, high 1): one step of the longest schedule. Above it a refinement
    whose T / sigma passes the cap runs the capped schedule (adq.method.models.diffusion.steps_for_strength)."""
    from adq.core.errors import InputError
    from adq.method.params import resolve

    for sigma in (1e-8, 1e-300, 5e-324, 0.004):
        with pytest.raises(InputError, match="sigma must be at least 0.005"):
            resolve("a fox", preset="tiny", strategy="refine", sigma=sigma, teacher_steps=200)
    assert resolve("a fox", preset="tiny", strategy="refine", sigma=0.005, teacher_steps=200).sigma == 0.005


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"aspect_ratio": "5:4"}, "aspect_ratio='5:4' is unknown"),
        ({"aspect_ratio": "16:9", "width": 64}, "aspect_ratio: give width and height"),
        ({"megapixels": 5.0}, "megapixels=5 is out of range"),
        ({"megapixels": 0.0}, "megapixels=0 is out of range"),
        ({"megapixels": True}, "megapixels must be a number"),
        ({"output_format": "gif"}, "output_format='gif' is unknown"),
        ({"output_quality": 0}, "output_quality=0"),
        ({"negative_prompt": 7}, "negative_prompt must be a string"),
        ({"negative_prompt": "x" * 2001}, "negative_prompt: at most"),
    ],
)
def test_hosted_api_fields_are_checked(overrides, named):
    from adq.method.params import resolve

    with pytest.raises(InputError, match=re.escape(named)):
        resolve("a red fox", preset="null", **overrides)


@pytest.mark.parametrize(
    "preset, aspect, megapixels, size",
    [
        ("tiny", "16:9", None, (40, 24)),  # the tiny preset's 32x32 area, as 16:9 in multiples of 8
        ("null", "1:1", 0.25, (504, 504)),
        ("null", "21:9", 1.0, (1528, 656)),
        ("tiny-flux", "16:9", 0.01, (128, 80)),  # FLUX: multiples of 16
        ("tiny-sd3", "9:16", 0.01, (80, 128)),
        ("tiny-sd15", "16:9", 0.01, (136, 72)),  # a UNet family: multiples of 8
    ],
)
def test_an_aspect_ratio_resolves_to_the_nearest_multiple_of_the_familys_latent_factor(
    preset, aspect, megapixels, size
):
    from adq.method.params import resolve

    p = resolve("a red fox", preset=preset, aspect_ratio=aspect, megapixels=megapixels)
    assert (p.width, p.height) == size and p.aspect_ratio == aspect and p.megapixels == megapixels


def test_a_preset_that_lists_its_sizes_serves_only_those(monkeypatch):
    import dataclasses

    from adq.method import params as module
    from adq.method.presets import get_preset

    listed = dataclasses.replace(get_preset("null"), sizes=((8, 8), (40, 24)))
    monkeypatch.setattr(module, "get_preset", lambda name: listed)
    assert (module.resolve("a fox", preset="null").width, module.resolve("a fox", width=40, height=24).width) == (8, 40)
    with pytest.raises(InputError, match=r"size 24x40: preset 'null' serves only 8x8, 40x24"):
        module.resolve("a fox", preset="null", width=24, height=40)
    with pytest.raises(InputError, match=r"size 72x136: preset 'null' serves only"):
        module.resolve("a fox", preset="null", aspect_ratio="9:16", megapixels=0.01)


def test_a_negative_prompt_is_refused_for_a_preset_whose_pipelines_take_none(monkeypatch):
    from adq.method import hosted
    from adq.method.models import precision
    from adq.method.params import resolve

    assert resolve("a fox", preset="tiny-sd15", negative_prompt="  blurry ").negative_prompt == "blurry"
    assert resolve("a fox", preset="tiny-sd15", negative_prompt="   ").negative_prompt is None
    hosted.takes_negative.cache_clear()
    monkeypatch.setattr(precision, "pipeline_class", lambda spec: "Flux2Pipeline")  # FLUX.2 takes none
    try:
        with pytest.raises(InputError, match="negative_prompt: preset 'tiny-sd15'.s pipelines take no negative"):
            resolve("a fox", preset="tiny-sd15", negative_prompt="blurry")
    finally:
        hosted.takes_negative.cache_clear()

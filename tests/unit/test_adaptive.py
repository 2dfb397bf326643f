"""The paper's API (shared/method/adaptive.py, imported as ``adaptive_diffusion``) on the tiny SDXL twins: the docs'
two examples (docs/paper-api.md) run as printed, the reference's defects stay fixed, and bad arguments are refused
before any model runs."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from adq.method.models import registry, tiny
from tests.plugins.estimators import ImageRewardLike

DOC_BLOCKS = 2


def _doc_examples() -> list[str]:
    from tests.helpers import ROOT

    text = (ROOT / "docs" / "paper-api.md").read_text()
    section = text.split("## From the paper's code to a cluster", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == DOC_BLOCKS
    return blocks


def _swapped(code: str, tmp_path, n_samples: int) -> str:
    """Only the model folders (and ImageReward, which needs real weights) swapped for the tiny twins."""
    root = tiny.ensure_built()
    swaps = {
        '"latent-consistency/lcm-sdxl"': repr(str(root / "student" / "unet")),
        '"stabilityai/stable-diffusion-xl-base-1.0"': repr(str(root / "teacher")),
        '"stabilityai/sdxl-turbo"': repr(str(root / "student")),
        '"stabilityai/stable-diffusion-xl-refiner-1.0"': repr(str(root / "teacher")),
        "import ImageReward as RM": "from tests.plugins.estimators import ImageRewardLike",
        'RM.load("ImageReward-v1.0")': "ImageRewardLike()",
        "n_samples=5000": f"n_samples={n_samples}",
        'file_path="data/': f'file_path="{tmp_path}/',
    }
    for old, new in swaps.items():
        assert old in code or old.startswith(('"latent', '"stabilityai')), old
        code = code.replace(old, new)
    return code


def _teacher_share(pipeline, k: int, n: int, **call) -> tuple[float, list]:
    """Prompts from the calibration's own set, with seeds it did not use (fresh traffic from the same mix)."""
    from adq.core.resources import data_dir
    from adq.method.percentiles import read_prompts

    prompts = read_prompts(data_dir() / "prompts" / "calibration.txt")
    records = [
        pipeline(prompts[(i * 7) % len(prompts)], k=k, seed=10_000 + i, return_record=True, **call)[1] for i in range(n)
    ]
    return sum(r.teacher_used for r in records) / n, records


@pytest.mark.parametrize("example", [0, 1])
def test_the_doc_examples_run_as_printed(tmp_path, example):
    code = _swapped(_doc_examples()[example], tmp_path, n_samples=32)
    scope: dict = {}
    exec(compile(code, f"docs example {example + 1}", "exec"), scope)
    image, pipeline = scope["image"], scope["pipeline_adaptive"]
    assert isinstance(image, Image.Image)
    steps_s, steps_t = (4, 12) if example == 0 else (2, 4)
    call = {"num_inference_steps_student": steps_s, "num_inference_steps_teacher": steps_t}
    call |= {"student_guidance": 8.0} if example == 0 else {}
    n = 24
    share, records = _teacher_share(pipeline, 50, n, **call)
    sd = math.sqrt(0.25 / n)
    assert abs(share - 0.5) <= 3.5 * sd, share  # about k % reach the teacher (binomial bounds)
    refined = [r for r in records if r.teacher_used]
    assert refined and all(r.teacher_steps == steps_t and r.student_steps == steps_s for r in refined)
    assert all(r.teacher_steps == 0 for r in records if not r.teacher_used)


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    from tests.plugins.pipelines import NAME

    registry.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADQ_HOME", str(tmp_path_factory.mktemp("home")))
        from tests.plugins.pipelines import paper_tiny

        pipeline = paper_tiny()
    assert pipeline.name == NAME
    yield pipeline
    registry.clear()


def _pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_the_teacher_is_seeded_so_refined_images_repeat(paper):
    a = paper("a wooden boat", k=100, seed=3, return_record=True)[1]
    b = paper("a wooden boat", k=100, seed=3, return_record=True)[1]
    c = paper("a wooden boat", k=100, seed=4, return_record=True)[1]
    assert a.teacher_used and np.array_equal(_pixels(a.final_image), _pixels(b.final_image))
    assert not np.array_equal(_pixels(a.final_image), _pixels(c.final_image))


def test_a_negative_prompt_changes_the_teachers_image(paper):
    plain = paper("a wooden boat", k=100, seed=3, teacher_guidance=5.0, return_record=True)[1]
    negative = paper("a wooden boat", k=100, seed=3, teacher_guidance=5.0, negative_prompt="fog", return_record=True)
    assert negative[1].teacher_used and not np.array_equal(_pixels(plain.final_image), _pixels(negative[0]))


def test_the_student_image_keeps_its_size(paper):
    record = paper("a wooden boat", k=100, seed=3, width=48, height=40, return_record=True)[1]
    assert record.student_image.size == (48, 40) == record.final_image.size


def test_any_k_works_and_interpolates_a_reference_file(paper, tmp_path):
    from adq.method import percentiles as cal

    for k in (0, 1, 37, 99, 100):
        assert isinstance(paper("a red kite", k=k, seed=1), Image.Image)
    # The reference's own format: keys "10".."90" only, no settings recorded.
    reference = {str(k): paper.percentiles.values[k] for k in range(10, 100, 10)}
    kept = paper.percentiles
    try:
        paper.percentiles = cal.parse(reference)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            record = paper("a red kite", k=35, seed=1, return_record=True)[1]
        assert record.tau == pytest.approx((reference["30"] + reference["40"]) / 2)
        assert any("records no student settings" in str(w.message) for w in caught)
    finally:
        paper.percentiles = kept


@pytest.mark.parametrize("sigma, t", [(1.0, 3), (0.05, 3), (0.5, 5)])
def test_exactly_t_teacher_steps_at_every_sigma(paper, sigma, t):
    calls = []
    handle = paper.teacher.pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    try:
        record = paper(
            "a blue tram",
            k=100,
            seed=2,
            sigma=sigma,
            num_inference_steps_teacher=t,
            teacher_guidance=0.0,
            return_record=True,
        )[1]
    finally:
        handle.remove()
    assert record.teacher_steps == t == len(calls)


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"sigma": 0}, "sigma=0"),
        ({"sigma": -0.2}, "sigma=-0.2"),
        ({"sigma": float("nan")}, "sigma=nan"),
        ({"k": 101}, "k=101"),
        ({"k": 55.5}, "k"),
        ({"num_inference_steps_teacher": 0}, "teacher_steps=0"),
        ({"num_inference_steps_student": 3, "k": 50}, "steps 2 -> 3"),
        ({"student_guidance": 8.0, "k": 50}, "guidance 0.0 -> 8.0"),
        ({"strategy": "sharpen"}, "strategy"),
        ({"prompt": ""}, "prompt"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them_before_any_model_runs(paper, kwargs, named):
    calls = []
    hooks = [
        m.register_forward_hook(lambda *a: calls.append(1)) for m in (paper.student.pipe.unet, paper.teacher.pipe.unet)
    ]
    try:
        with pytest.raises(ValueError, match=re.escape(named)):
            paper(**({"prompt": "a cat", "k": 100} | kwargs))
    finally:
        for h in hooks:
            h.remove()
    assert calls == []


def test_calibration_is_sampled_under_the_serving_settings_and_names_the_default_prompts(paper, tmp_path, capsys):
    from adq.method import percentiles as cal

    path = tmp_path / "p.json"
    paper.calc_score_percentiles(
        file_path=path,
        num_inference_steps_student=2,
        n_samples=8,
        width=32,
        height=32,
        student_guidance=1.5,
        progress=False,
    )
    assert "using the shipped prompt set" in capsys.readouterr().out
    saved = cal.load(path)
    assert saved.meta["student_settings"] == {"steps": 2, "guidance": 1.5, "width": 32, "height": 32}
    assert set(map(str, range(10, 100, 10))) <= {str(k) for k in saved.values} and len(saved.values) == 101
    assert paper.preset.student_guidance == 1.5  # the object now serves under what it calibrated
    assert isinstance(paper("a cat", seed=1), Image.Image)
    paper.calc_score_percentiles(
        file_path=tmp_path / "back.json",
        num_inference_steps_student=2,
        n_samples=8,
        width=32,
        height=32,
        student_guidance=0.0,
        progress=False,
    )
    with pytest.raises(ValueError, match="n_samples=0"):
        paper.calc_score_percentiles(file_path=tmp_path / "none.json", n_samples=0)


def test_an_imagereward_style_estimator_is_called_per_image_and_a_batched_one_in_batches():
    from adq.method.models.estimators import CheckedEstimator, PerItemEstimator, as_batched
    from tests.plugins.estimators import Brightness

    per_item = as_batched(ImageRewardLike())
    assert isinstance(per_item, CheckedEstimator) and isinstance(per_item.inner, PerItemEstimator)
    batched = as_batched(Brightness())
    assert isinstance(batched.inner, Brightness)
    images = [Image.new("RGB", (32, 32), (v, v, v)) for v in (0, 255)]
    assert batched.score(["a", "b"], images) == pytest.approx([0.0, 1.0])
    assert batched.inner.calls == [2]
    with pytest.raises(ValueError, match="has no score"):
        as_batched(object())


def test_models_that_cannot_play_their_roles_are_refused():
    from adaptive_diffusion import AdaptiveDiffusionPipeline

    with pytest.raises(ValueError, match="student must be a diffusers pipeline"):
        AdaptiveDiffusionPipeline(estimator=ImageRewardLike(), student="sdxl-turbo", teacher=None)

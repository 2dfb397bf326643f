"""The safety filter's loaders: diffusers' StableDiffusionSafetyChecker on a tiny random twin (its verdicts are set
through its concept thresholds, which is how the real checker decides), a Python filter held to its contract, and
the placeholders."""

from __future__ import annotations

import pytest
from PIL import Image

from adq.core.errors import InputError, ModelError
from adq.method.models import safety


def _tiny_checker(folder, threshold: float):
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    vision = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=32)
    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2),
        vision_config=vision | {"patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    checker = StableDiffusionSafetyChecker(config)
    with torch.no_grad():  # a concept's score is its cosine minus its threshold: above 0 flags the image
        checker.concept_embeds_weights.fill_(threshold)
        checker.special_care_embeds_weights.fill_(2.0)
    checker.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)


@pytest.mark.parametrize("threshold, flagged", [(-1.0, True), (2.0, False)])
def test_the_diffusers_checker_loads_from_a_folder_and_gives_its_verdicts(tmp_path, threshold, flagged):
    import torch

    _tiny_checker(tmp_path / "checker", threshold)
    spec = safety.SafetySpec(kind="diffusers", source=str(tmp_path / "checker"))
    f = safety.load(spec, torch.device("cpu"))
    images = [Image.new("RGB", (40, 24), (200, 30, 30)), Image.new("RGB", (40, 24), (10, 200, 30))]
    assert f.check(["a", "b"], images) == [flagged, flagged]


def test_a_missing_checker_folder_is_refused_naming_it(tmp_path):
    import torch

    with pytest.raises(ModelError, match=r"safety checker weights not found at .*nowhere"):
        safety.load(safety.SafetySpec(kind="diffusers", source=str(tmp_path / "nowhere")), torch.device("cpu"))


class _Wrong:
    def check(self, prompts, images):
        return [True]


def test_a_python_filter_is_held_to_one_verdict_per_image(monkeypatch):
    import sys
    import types

    module = types.ModuleType("adq_test_filters")
    module.wrong = _Wrong
    module.none = lambda: object()
    monkeypatch.setitem(sys.modules, "adq_test_filters", module)
    f = safety.load(safety.SafetySpec(kind="python", factory="adq_test_filters:wrong"), None)
    with pytest.raises(ModelError, match="1 verdicts for 2 images"):
        f.check(["a", "b"], [Image.new("RGB", (8, 8))] * 2)
    with pytest.raises(InputError, match="which has no check"):
        safety.load(safety.SafetySpec(kind="python", factory="adq_test_filters:none"), None)


def test_placeholders_hide_the_image():
    image = Image.new("RGB", (64, 32), (250, 10, 10))
    image.putpixel((3, 3), (0, 255, 0))
    assert safety.placeholder(image, "black").getextrema() == ((0, 0),) * 3
    blurred = safety.placeholder(image, "blur")
    assert blurred.size == image.size and blurred.getpixel((3, 3)) != (0, 255, 0)

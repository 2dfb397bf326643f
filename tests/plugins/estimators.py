"""A user's own estimator, as a team would write one: here, the image's mean brightness, with a bonus for prompts
that ask for light. Presets name it as {kind: python, factory: "tests.plugins.estimators:brightness"}."""

from __future__ import annotations

import numpy as np


class Brightness:
    def __init__(self, device=None):
        self.device = device
        self.calls: list[int] = []  # batch sizes seen, so tests can check batching

    def score(self, prompts: list[str], images: list) -> list[float]:
        self.calls.append(len(images))
        return [
            float(np.asarray(img.convert("L"), dtype=np.float32).mean() / 255.0) + (0.5 if "bright" in p else 0.0)
            for p, img in zip(prompts, images)
        ]


def brightness(device=None) -> Brightness:
    return Brightness(device)


def broken():
    return object()


class ImageRewardLike:
    """ImageReward's own call shape, ``score(prompt, image) -> float`` (what ``RM.load(...)`` returns), over the
    tiny CLIP estimator: the paper's code hands such an object to AdaptiveDiffusionPipeline unchanged."""

    def __init__(self):
        from adq.method.models import tiny
        from adq.method.models.estimators import TinyClipEstimator

        self.inner = TinyClipEstimator(tiny.ensure_built() / "estimator", "cpu")
        self.calls = 0

    def score(self, prompt, image) -> float:
        self.calls += 1
        return self.inner.score([prompt], [image])[0]

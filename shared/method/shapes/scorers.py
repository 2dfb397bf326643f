"""The shapes estimator and judge: attribute classifiers behind the estimators' ``score(prompts, images)``.

estimator.score = mean log-probability of the prompt's attributes (a prompt-alignment score, like ImageReward's
role); judge.accuracy = fraction of the prompt's attributes the judge sees in the image. Routing never uses the
judge."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from adq.method.shapes import components as C
from adq.method.shapes import world


class AttributeScorer:
    def __init__(self, folder: str | Path, device=None):
        from safetensors.torch import load_file

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        self.role = config["role"]
        self.net = C.AttributeNet(tuple(config["widths"]))
        self.net.load_state_dict(load_file(folder / "model.safetensors"))
        self.device = device or torch.device("cpu")
        self.net.to(self.device).eval()

    def _log_probs(self, prompts, images):
        if len(prompts) != len(images):
            from adq.core.errors import InputError

            raise InputError(f"score() got {len(prompts)} prompts but {len(images)} images")
        labels = torch.tensor([world.parse(p).labels() for p in prompts], device=self.device)
        with torch.inference_mode():
            logits = self.net(C.to_tensor(images).to(self.device))
        return [torch.log_softmax(lg, -1) for lg in logits], labels

    def score(self, prompts, images) -> list[float]:
        if not prompts:
            return []
        logps, labels = self._log_probs(prompts, images)
        per_attr = torch.stack([lp.gather(1, labels[:, i : i + 1]).squeeze(1) for i, lp in enumerate(logps)], 1)
        return [float(v) for v in per_attr.mean(1).cpu()]

    def accuracy(self, prompts, images) -> list[float]:
        if not prompts:
            return []
        logps, labels = self._log_probs(prompts, images)
        hits = torch.stack([lp.argmax(1) == labels[:, i] for i, lp in enumerate(logps)], 1).float()
        return [float(v) for v in hits.mean(1).cpu()]

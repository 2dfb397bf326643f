"""Quality estimators behind one batched interface: ``score(prompts, images) -> list[float]``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from adq.core.config import get_settings
from adq.core.errors import InputError, ModelUnavailable, ScoringError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Estimator(Protocol):
    def score(self, prompts: Sequence[str], images: Sequence) -> list[float]: ...


def _check_batch(prompts, images) -> None:
    if len(prompts) != len(images):
        raise InputError(f"score() got {len(prompts)} prompts but {len(images)} images")


def features(out):
    """CLIP's projected embeddings: transformers 4 returns the tensor, 5 a model output holding it as pooler_output."""
    return out if hasattr(out, "norm") else out.pooler_output


class TinyClipEstimator:
    """Scaled cosine similarity between the prompt and image embeddings of a tiny, locally built CLIP model."""

    SCALE = 10.0

    def __init__(self, folder: str | Path, device):
        import torch
        from transformers import CLIPModel, CLIPTokenizer

        self.device = device
        self.model = CLIPModel.from_pretrained(folder, local_files_only=True).to(device).eval()
        self.tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
        self.size = self.model.config.vision_config.image_size
        self.mean = torch.tensor(CLIP_MEAN, device=device).view(3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=device).view(3, 1, 1)

    def _pixels(self, image):
        import numpy as np
        import torch
        from PIL import Image

        image = image.convert("RGB").resize((self.size, self.size), Image.Resampling.BICUBIC)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).to(self.device)
        return (x - self.mean) / self.std

    def score(self, prompts, images) -> list[float]:
        import torch

        _check_batch(prompts, images)
        if not prompts:
            return []
        with torch.inference_mode():
            text = self.tokenizer(list(prompts), padding="max_length", truncation=True, return_tensors="pt")
            t = features(self.model.get_text_features(**text.to(self.device)))
            v = features(self.model.get_image_features(pixel_values=torch.stack([self._pixels(im) for im in images])))
            sims = torch.nn.functional.cosine_similarity(t, v, dim=-1) * self.SCALE
        return [float(s) for s in sims.cpu()]


class ImageRewardEstimator:
    """ImageReward (the image-reward package) scored in batches under inference mode.

    The package's own ``load`` downloads from the hub and builds its BERT tokenizer from the hub id
    'bert-base-uncased'; here the checkpoint, med_config and tokenizer are explicit paths, so nothing is fetched."""

    def __init__(
        self,
        device,
        checkpoint: str | None = None,
        med_config: str | None = None,
        tokenizer: str | None = None,
        state_dict: dict | None = None,
    ):
        checkpoint = checkpoint or get_settings().imagereward_checkpoint
        med_config = med_config or get_settings().imagereward_med_config
        tokenizer = tokenizer or get_settings().imagereward_tokenizer
        ckpt_path = self._find(checkpoint, "ImageReward.pt") if state_dict is None else None
        med_path = self._find(med_config or "med_config.json", "med_config.json")
        self.device = device
        self.model = self._build(med_path, tokenizer)
        import torch

        if state_dict is None:
            state_dict = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        # strict=False as the package loads it (the file may carry extra keys), but every parameter must be in it:
        # a partial or wrong file would otherwise score with random weights and route on noise.
        missing = self.model.load_state_dict(state_dict, strict=False).missing_keys
        params = {name for name, _ in self.model.named_parameters()}
        if state_dict and (absent := [k for k in missing if k in params]):
            raise ModelUnavailable(
                f"ImageReward checkpoint {ckpt_path or 'state dict'!r} lacks {len(absent)} of the model's parameters "
                f"({', '.join(absent[:3])}, ...); it is not an ImageReward.pt for this med_config"
            )
        self.model.to(device).eval()

    @staticmethod
    def _find(value: str, filename: str) -> str:
        candidates = [Path(value).expanduser()]
        if get_settings().model_dir is not None:
            candidates += [
                Path(get_settings().model_dir) / "ImageReward" / filename,
                Path(get_settings().model_dir) / value,
            ]
        candidates.append(Path("~/.cache/ImageReward").expanduser() / filename)
        for path in candidates:
            if path.is_file():
                return str(path)
        raise ModelUnavailable(
            f"ImageReward file {filename} ({value!r}) is not available on this machine. Point "
            f"ADQ_IMAGEREWARD_CHECKPOINT at ImageReward.pt and ADQ_IMAGEREWARD_MED_CONFIG at med_config.json "
            f"(both from the THUDM/ImageReward hub repo), or put them in $ADQ_MODEL_DIR/ImageReward/."
        )

    @staticmethod
    def _build(med_config: str, tokenizer: str):
        from transformers import BertTokenizer

        try:
            tok = BertTokenizer.from_pretrained(tokenizer, local_files_only=not get_settings().allow_downloads)
        except OSError:
            raise ModelUnavailable(
                f"ImageReward's BERT tokenizer {tokenizer!r} is not available locally; point "
                f"ADQ_IMAGEREWARD_TOKENIZER at a folder with bert-base-uncased's vocab.txt"
            ) from None
        tok.add_special_tokens({"bos_token": "[DEC]"})
        tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
        tok.enc_token_id = tok.convert_tokens_to_ids("[ENC]")  # additional_special_tokens_ids is gone in v5

        from adq.method.models import imagereward_compat

        imagereward_compat.install()  # transformers 5 dropped names image-reward 1.5 imports; a no-op before
        import ImageReward.models.BLIP.blip_pretrain as blip_pretrain
        from ImageReward.ImageReward import ImageReward

        imagereward_compat.patch_models()

        # BLIP_Pretrain calls init_tokenizer() -> BertTokenizer.from_pretrained('bert-base-uncased') (the hub);
        # hand it the tokenizer loaded above instead, for the duration of the constructor only.
        original = blip_pretrain.init_tokenizer
        blip_pretrain.init_tokenizer = lambda: tok
        try:
            return ImageReward(med_config=med_config, device="cpu")
        finally:
            blip_pretrain.init_tokenizer = original

    def score(self, prompts, images) -> list[float]:
        import torch

        _check_batch(prompts, images)
        if not prompts:
            return []
        m = self.model
        m.device = self.device
        with torch.inference_mode():
            text = m.blip.tokenizer(
                list(prompts), padding="max_length", truncation=True, max_length=35, return_tensors="pt"
            ).to(self.device)
            pixels = torch.stack([m.preprocess(im) for im in images]).to(self.device)
            image_embeds = m.blip.visual_encoder(pixels)
            atts = torch.ones(image_embeds.size()[:-1], dtype=torch.long, device=self.device)
            out = m.blip.text_encoder(
                text.input_ids,
                attention_mask=text.attention_mask,
                encoder_hidden_states=image_embeds,
                encoder_attention_mask=atts,
                return_dict=True,
            )
            rewards = (m.mlp(out.last_hidden_state[:, 0, :].float()) - m.mean) / m.std
        return [float(r) for r in rewards.squeeze(-1).cpu()]


class NullEstimator:
    """Costs nothing: a uniform pseudo-random score in [0, 1) from the prompt and the image bytes. Prompts marked
    ``drift:`` score half as high, like traffic that scores lower than the calibration (``adq bench control``)."""

    DRIFT = "drift:"

    def score(self, prompts, images) -> list[float]:
        _check_batch(prompts, images)
        out = []
        for prompt, image in zip(prompts, images):
            digest = hashlib.sha256(prompt.encode() + image.tobytes()).digest()
            u = int.from_bytes(digest[:8], "big") / 2**64
            out.append(u / 2 if prompt.startswith(self.DRIFT) else u)
        return out


class PickScoreEstimator:
    """PickScore (Kirstain et al. 2023): a CLIP model fine-tuned on human preferences, loaded with transformers'
    own ``CLIPModel`` and ``CLIPProcessor``. The score is ``logit_scale.exp()`` times the cosine similarity of a
    prompt and its image, in batches under inference mode."""

    def __init__(self, source: str, processor: str, device):
        from transformers import CLIPModel, CLIPProcessor

        from adq.method.models.weights import hub_kwargs, locate

        model_path = locate(source, "PickScore", marker="config.json")
        processor_path = locate(processor, "PickScore processor", marker="preprocessor_config.json")
        local = not get_settings().allow_downloads
        self.device = device
        pinned = hub_kwargs(source)
        self.model = CLIPModel.from_pretrained(model_path, local_files_only=local, **pinned).to(device).eval()
        self.processor = CLIPProcessor.from_pretrained(
            processor_path, local_files_only=local, revision=hub_kwargs(processor).get("revision")
        )

    def score(self, prompts, images) -> list[float]:
        import torch

        _check_batch(prompts, images)
        if not prompts:
            return []
        with torch.inference_mode():
            pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
            text = self.processor(text=list(prompts), padding=True, truncation=True, max_length=77, return_tensors="pt")
            v = features(self.model.get_image_features(pixel_values=pixels["pixel_values"].to(self.device)))
            t = features(
                self.model.get_text_features(
                    input_ids=text["input_ids"].to(self.device), attention_mask=text["attention_mask"].to(self.device)
                )
            )
            v, t = v / v.norm(dim=-1, keepdim=True), t / t.norm(dim=-1, keepdim=True)
            scores = self.model.logit_scale.exp() * (t * v).sum(dim=-1)
        return [float(x) for x in scores.cpu()]


def load_estimator(spec, device) -> Estimator:
    """The estimator a preset names (an EstimatorSpec, or just its kind)."""
    from adq.method.presets import EstimatorSpec

    spec = spec if isinstance(spec, EstimatorSpec) else EstimatorSpec(spec)
    kind = spec.kind
    try:
        if kind == "pickscore":
            if not spec.source or not spec.processor:
                raise InputError("the pickscore estimator needs a source and a processor in its preset")
            return PickScoreEstimator(spec.source, spec.processor, device)
        if kind == "tiny":
            from adq.method.models import tiny

            return TinyClipEstimator(tiny.ensure_built() / "estimator", device)
        if kind == "imagereward":
            return ImageRewardEstimator(device)
        if kind == "shapes":
            from adq.core.resources import data_path
            from adq.method.shapes.scorers import AttributeScorer

            folder = data_path("models", "shapes", "estimator")
            if not (folder / "model.safetensors").is_file():
                raise ModelUnavailable(f"shapes estimator weights missing at {folder}; run `adq train-shapes`")
            return AttributeScorer(folder, device)
        if kind == "shapes-judge":
            return _shapes_judge(device)
        if kind == "null":
            return NullEstimator()
        if kind == "python":
            return python_estimator(spec.factory, device)
        if kind == "pipeline":
            raise InputError("this preset's models live in a Python pipeline object: serve it with --pipeline")
    except (ModelUnavailable, InputError):
        raise
    except Exception as exc:  # a broken checkpoint is a scoring failure the operator must see, not a retry loop
        raise ScoringError(f"cannot load the {kind} estimator: {exc}") from exc
    raise InputError(f"unknown estimator kind {kind!r}")


def python_estimator(factory: str | None, device) -> Estimator:
    """Your own estimator: ``package.module:callable`` returns an object whose ``score(prompts, images)`` gives one
    float per image. The callable gets ``device=`` when it takes that argument."""
    import inspect

    from adq.core.plugins import load_object

    target = load_object(factory, "estimator factory")
    if not callable(target):
        raise InputError(f"estimator factory {factory!r} is not callable")
    takes_device = "device" in inspect.signature(target).parameters
    estimator = target(device=device) if takes_device else target()
    if not callable(getattr(estimator, "score", None)):
        raise InputError(f"estimator factory {factory!r} returned {type(estimator).__name__}, which has no score()")
    return CheckedEstimator(estimator, factory)


class CheckedEstimator:
    """A user's estimator, held to the contract: one finite float per image, or a ScoringError naming the factory."""

    def __init__(self, inner, name: str):
        self.inner, self.name = inner, name

    def score(self, prompts: list[str], images: list) -> list[float]:
        import math

        scores = list(self.inner.score(prompts, images))
        if len(scores) != len(images):
            raise ScoringError(f"estimator {self.name} gave {len(scores)} scores for {len(images)} images")
        try:
            scores = [float(x) for x in scores]
        except (TypeError, ValueError) as exc:
            raise ScoringError(f"estimator {self.name} gave a score that is not a number: {exc}") from None
        if not all(math.isfinite(x) for x in scores):
            raise ScoringError(f"estimator {self.name} gave a score that is not finite: {scores}")
        return scores


class PerItemEstimator:
    """ImageReward's own API, ``score(prompt, image) -> float``, seen as a batched estimator (the paper's code
    passes ``RM.load(...)`` itself). Scores run without autograd, which the reference forgot."""

    def __init__(self, inner):
        self.inner = inner

    def score(self, prompts: list[str], images: list) -> list[float]:
        import torch

        with torch.no_grad():
            return [float(self.inner.score(p, img)) for p, img in zip(prompts, images)]


def as_batched(estimator) -> Estimator:
    """Any estimator object, as the batched ``score(prompts, images)`` the cascade calls. A ``score`` whose first
    two parameters are named ``prompts, images`` is taken as batched; otherwise as ``score(prompt, image)``."""
    import inspect

    score = getattr(estimator, "score", None)
    if not callable(score):
        raise InputError(f"estimator {type(estimator).__name__} has no score method")
    names = [p for p in inspect.signature(score).parameters if p != "self"][:2]
    name = type(estimator).__name__
    return CheckedEstimator(estimator if names == ["prompts", "images"] else PerItemEstimator(estimator), name)


class AccuracyJudge:
    """The shapes judge as an estimator: its score is the fraction of the prompt's attributes it sees (the
    quality benchmark's measure), so `adq tune` grades on the same scale."""

    def __init__(self, scorer):
        self.scorer = scorer

    def score(self, prompts, images) -> list[float]:
        return self.scorer.accuracy(prompts, images)


def _shapes_judge(device) -> AccuracyJudge:
    from adq.core.resources import data_path
    from adq.method.shapes.scorers import AttributeScorer

    folder = data_path("models", "shapes", "judge")
    if not (folder / "model.safetensors").is_file():
        raise ModelUnavailable(f"shapes judge weights missing at {folder}; run `adq train-shapes`")
    return AccuracyJudge(AttributeScorer(folder, device))

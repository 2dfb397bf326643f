"""The real image-reward package at full size (447 M parameters, random weights): our batched, inference-mode
scorer must agree with the package's own one-image-at-a-time ``score``. Nothing is downloaded: the med_config and
BERT vocabulary are written here."""

import json

import pytest

MED_CONFIG = {
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "type_vocab_size": 2,
    "vocab_size": 30524,
    "encoder_width": 768,
    "add_cross_attention": True,
}


def build_estimator(folder, checkpoint=None):
    """ImageReward at full size from the package, on files written here: (estimator, its float manifest). With no
    checkpoint the weights are the package's random initialisation."""
    import torch

    from adq.method.models.estimators import ImageRewardEstimator
    from tests.parity import manifest_of

    (folder / "med_config.json").write_text(json.dumps(MED_CONFIG))
    tok = folder / "bert"
    tok.mkdir(exist_ok=True)
    words = (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + list("abcdefghijklmnopqrstuvwxyz")
        + ["red", "fox", "a", "in", "the", "rain", "light", "##house", "by", "sea"]
    )
    (tok / "vocab.txt").write_text("\n".join(words) + "\n")
    torch.manual_seed(0)
    files = {"med_config": str(folder / "med_config.json"), "tokenizer": str(tok)}
    if checkpoint is None:
        est = ImageRewardEstimator("cpu", state_dict={}, **files)
    else:
        est = ImageRewardEstimator("cpu", checkpoint=str(checkpoint), **files)
    return est, manifest_of(est.model)


@pytest.fixture(scope="module")
def parity_estimator(tmp_path_factory):
    """Built once for this module as a deployment builds it, from an ImageReward.pt, med_config.json and a BERT
    tokenizer folder; the checkpoint holds the stack-independent parity weights (tests/parity.py)."""
    import torch

    from tests import parity

    folder = tmp_path_factory.mktemp("imagereward")
    recorded = parity.load()["manifest"]
    checkpoint = folder / "ImageReward.pt"
    torch.save(parity.weights(recorded), checkpoint)
    try:
        est, manifest = build_estimator(folder, checkpoint)
    finally:
        checkpoint.unlink()  # 1.8 GB
    assert [[n, s] for n, s in manifest] == recorded, "the checkpoint's parameter names or shapes changed"
    est.folder = folder
    return est


@pytest.mark.slow
def test_batched_imagereward_matches_the_package(parity_estimator):
    from tests.parity import PROMPTS, images

    est = parity_estimator
    batched = est.score(PROMPTS, images())
    reference = [est.model.score(p, im) for p, im in zip(PROMPTS, images())]
    assert batched == pytest.approx(reference, rel=1e-5)
    assert len(set(round(b, 6) for b in batched)) == len(PROMPTS)
    assert all(p.grad is None for p in est.model.parameters())  # scored under inference mode


@pytest.mark.slow
def test_imagereward_reproduces_the_scores_recorded_before_the_upgrade(parity_estimator):
    """Recorded on diffusers 0.36 / transformers 4.53 / image-reward 1.5 (the fixture names the stack); any later
    stack, or a port, must give the same scores from the same checkpoint within 1e-4."""
    from tests import parity

    recorded = parity.load()
    assert recorded["prompts"] == parity.PROMPTS
    assert parity_estimator.score(parity.PROMPTS, parity.images()) == pytest.approx(recorded["scores"], abs=1e-4)


@pytest.mark.slow
def test_imagereward_refuses_weights_that_leave_parameters_out(parity_estimator):
    """A partial or wrong file would otherwise score with random weights and route on noise."""
    from adq.core.errors import ModelUnavailable
    from adq.method.models.estimators import ImageRewardEstimator

    folder = parity_estimator.folder
    partial = {k: v for k, v in parity_estimator.model.state_dict().items() if not k.startswith("mlp.")}
    files = {"med_config": str(folder / "med_config.json"), "tokenizer": str(folder / "bert")}
    with pytest.raises(ModelUnavailable, match="lacks 10 of the model's parameters .mlp.layers.0.weight"):
        ImageRewardEstimator("cpu", state_dict=partial, **files)

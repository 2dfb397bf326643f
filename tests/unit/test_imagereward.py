"""The real image-reward package at full size (447 M parameters, random weights): our batched, inference-mode
scorer must agree with the package's own one-image-at-a-time ``score``. Nothing is downloaded: the med_config and
BERT vocabulary are written here."""

import json

import pytest
from PIL import Image

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


@pytest.mark.slow
def test_batched_imagereward_matches_the_package(tmp_path):
    import torch

    from shared.models.estimators import ImageRewardEstimator

    (tmp_path / "med_config.json").write_text(json.dumps(MED_CONFIG))
    tok = tmp_path / "bert"
    tok.mkdir()
    words = (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + list("abcdefghijklmnopqrstuvwxyz")
        + ["red", "fox", "a", "in", "the", "rain", "light", "##house", "by", "sea"]
    )
    (tok / "vocab.txt").write_text("\n".join(words) + "\n")

    torch.manual_seed(0)
    est = ImageRewardEstimator("cpu", med_config=str(tmp_path / "med_config.json"), tokenizer=str(tok), state_dict={})
    # The package initialises its MLP head with std 1/769, so random-weight scores are all but equal; widen it so
    # that a mix-up between batch items would show.
    for param in est.model.mlp.parameters():
        torch.nn.init.normal_(param, std=0.3)
    prompts = ["a red fox in the rain", "a lighthouse by the sea", "zebra"]
    images = [Image.new("RGB", (64, 48), c) for c in ((200, 30, 30), (20, 40, 200), (128, 128, 128))]
    batched = est.score(prompts, images)
    reference = [est.model.score(p, im) for p, im in zip(prompts, images)]
    assert batched == pytest.approx(reference, rel=1e-5)
    assert len(set(round(b, 6) for b in batched)) == 3
    assert all(p.grad is None for p in est.model.parameters())  # scored under inference mode

"""The compatibility layer that lets image-reward 1.5 run on transformers 5
(shared/method/models/imagereward_compat.py), on a tiny BERT from the package's own med.py: what it restores must
behave as transformers 4 behaved, since the full-size parity test only sees the sum of it."""

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def med():
    import importlib

    from adq.method.models import imagereward_compat

    imagereward_compat.install()
    module = importlib.import_module("ImageReward.models.BLIP.med")
    imagereward_compat.patch_models()
    return module


def _tiny(med, seed=0):
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=16,
        encoder_width=24,
        add_cross_attention=True,
    )
    torch.manual_seed(seed)
    return med.BertModel(config, add_pooling_layer=False).eval()


def test_the_names_med_imports_are_back_in_modeling_utils(med):
    import transformers.modeling_utils as modeling_utils

    for name in ("apply_chunking_to_forward", "prune_linear_layer", "find_pruneable_heads_and_indices"):
        assert callable(getattr(modeling_utils, name)), name
    find = modeling_utils.find_pruneable_heads_and_indices
    heads, index = find([1], n_heads=4, head_size=3, already_pruned_heads=set())
    assert heads == {1} and index.tolist() == [0, 1, 2, 6, 7, 8, 9, 10, 11]


def test_construction_initialises_the_weights_from_the_seed(med):
    a, b, c = _tiny(med, 0), _tiny(med, 0), _tiny(med, 1)
    wa, wb, wc = (m.encoder.layer[0].attention.self.query.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert 0.005 < float(wa.std()) < 0.05  # _init_weights' normal(0, initializer_range=0.02) ran, not the default init


def test_masked_image_tokens_do_not_reach_the_text(med):
    model = _tiny(med)
    ids = torch.tensor([[2, 7, 9, 3]])
    image = torch.randn(1, 5, 24)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    changed = image.clone()
    changed[:, 3:] = torch.randn(1, 2, 24) * 10

    def run(states, encoder_mask):
        with torch.inference_mode():
            out = model(ids, encoder_hidden_states=states, encoder_attention_mask=encoder_mask, return_dict=True)
        return out.last_hidden_state

    assert torch.allclose(run(image, mask), run(changed, mask), atol=1e-5)  # the restored invert_attention_mask
    assert not torch.allclose(run(image, None), run(changed, None), atol=1e-3)  # and without a mask they do


def test_head_masks_take_the_shapes_transformers_4_gave_them(med):
    model = _tiny(med)
    assert model.get_head_mask(None, 2) == [None, None]
    per_head = model.get_head_mask(torch.ones(4), 2)
    assert per_head.shape == (2, 1, 4, 1, 1) and per_head.dtype == model.dtype
    per_layer = model.get_head_mask(torch.ones(2, 4), 2)
    assert per_layer.shape == (2, 1, 4, 1, 1)


def test_patching_twice_wraps_once(med):
    from adq.method.models import imagereward_compat

    before = med.BertPreTrainedModel.init_weights
    imagereward_compat.install()
    imagereward_compat.patch_models()
    assert med.BertPreTrainedModel.init_weights is before

"""PickScore as a second estimator, on a tiny CLIP model and processor built locally (tiny-pickscore preset)."""

import pytest
from PIL import Image

from adq.core.errors import ModelUnavailable

PROMPTS = ["a red fox in the rain", "a lighthouse by the sea", "zebra"]


def _images():
    return [Image.new("RGB", (40, 30), c) for c in ((200, 30, 30), (20, 40, 200), (128, 128, 128))]


def test_pickscore_batches_score_as_clip_logits_one_pair_at_a_time():
    import torch

    from adq.method.models import registry

    est = registry.estimator("tiny-pickscore")
    batched = est.score(PROMPTS, _images())
    one_by_one = []
    for prompt, image in zip(PROMPTS, _images()):  # CLIP's own forward: logit_scale times the cosine similarity
        inputs = est.processor(text=[prompt], images=[image], padding=True, return_tensors="pt")
        with torch.inference_mode():
            one_by_one.append(float(est.model(**inputs).logits_per_image[0, 0]))
    assert batched == pytest.approx(one_by_one, rel=1e-5)
    assert len({round(b, 6) for b in batched}) == 3 and est.score([], []) == []


def test_missing_pickscore_weights_fail_fast_naming_them(tmp_path):
    from adq.method.models.estimators import load_estimator
    from adq.method.presets import EstimatorSpec
    from tests.helpers import configured

    spec = EstimatorSpec("pickscore", source="yuvalkirstain/PickScore_v1", processor="laion/CLIP-ViT-H-14")
    with configured(ADQ_MODEL_DIR=str(tmp_path)), pytest.raises(ModelUnavailable, match="PickScore weights"):
        load_estimator(spec, None)


def test_a_preset_with_pickscore_calibrates_and_takes_jobs(sqlite_env, tmp_path):
    from adq.control.calibrate import calibrate
    from adq.jobs import records

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    result = calibrate(prompts, preset="tiny-pickscore", n_samples=12, progress=False)
    assert result.calibration_id is not None and result.percentiles.values[90] > result.percentiles.values[10]
    job, created = records.record("a fox", preset="tiny-pickscore", k=50)
    assert created and job.calibration_id == result.calibration_id

"""The real-size twins have the released models' architectures: their parameter counts, on the meta device, are the
published ones (SD1.5's UNet 859.5 M, SDXL's 2.567 B, FLUX.1's transformer 11.9 B, T5-XXL's encoder 4.76 B)."""

import pytest

from adq.method.models import realsize

PUBLISHED_MILLIONS = {  # from the released checkpoints' model cards and safetensors headers
    ("sd15", "unet"): 859.52,
    ("sd15", "text_encoder"): 123.06,
    ("sdxl", "unet"): 2567.46,
    ("sdxl", "text_encoder_2"): 694.66,
    ("flux", "transformer"): 11901.41,
    ("flux", "text_encoder_2"): 4762.31,
    ("sd15", "vae"): 83.65,
}


@pytest.mark.parametrize("family, component", PUBLISHED_MILLIONS)
def test_each_component_has_the_released_models_size(family, component):
    assert realsize.counts(family)[component] / 1e6 == pytest.approx(PUBLISHED_MILLIONS[family, component], abs=0.5)


def test_resident_bytes_follow_the_precision():
    fp32, bf16 = realsize.resident_bytes("flux", "float32"), realsize.resident_bytes("flux", "bfloat16")
    assert fp32["total"] == 2 * bf16["total"] and bf16["total"] > 33 * 10**9  # FLUX.1 + T5-XXL in bf16: 33.7 GB

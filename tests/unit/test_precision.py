"""The precision each family gets: bfloat16 for FLUX, SD3 and Z-Image on CUDA, float16 for SD1.5 and SDXL (their
VAE upcast by its own config), float32 on the CPU; a preset's dtype wins, and ADQ_DTYPE=float16 is refused for a
family that overflows in it. Checked on the tiny twins of each family, on a CUDA device object (no GPU needed: the
dtype is decided before anything is loaded)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from adq.core.errors import InputError, ModelError
from adq.method.models import precision
from adq.method.models.weights import locate
from adq.method.presets import get_preset, load_file
from tests.helpers import configured

CUDA, CPU = torch.device("cuda"), torch.device("cpu")
FAMILIES = {  # preset: (its pipeline class, the dtype on a CUDA device with bf16)
    "tiny": ("StableDiffusionXLPipeline", "float16"),
    "tiny-sd15": ("StableDiffusionPipeline", "float16"),
    "tiny-sd3": ("StableDiffusion3Pipeline", "bfloat16"),
    "tiny-flux": ("FluxPipeline", "bfloat16"),
    "tiny-zimage": ("ZImagePipeline", "bfloat16"),
}


@pytest.fixture()
def bf16_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_gets_its_precision_on_cuda_and_float32_on_the_cpu(name, bf16_gpu):
    cls, expected = FAMILIES[name]
    preset = get_preset(name)
    for spec in (preset.student, preset.teacher):
        assert precision.pipeline_class(spec) == cls
        assert precision.for_spec(spec, CUDA) == expected
        assert precision.for_spec(spec, CPU) == "float32"


@pytest.mark.parametrize("name", ["tiny", "tiny-sd15"])
def test_float16_families_decode_with_the_vae_their_config_upcasts(name):
    """SDXL's VAE overflows in float16; its config's force_upcast makes the pipeline decode in float32."""
    vae = json.loads((Path(locate(get_preset(name).teacher.source, "t")) / "vae" / "config.json").read_text())
    assert vae["force_upcast"] is True


def test_without_bf16_the_overflowing_families_fall_back_to_float32_not_float16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision.for_spec(get_preset("tiny-flux").teacher, CUDA) == "float32"
    assert precision.for_spec(get_preset("tiny").teacher, CUDA) == "float16"


def test_a_presets_dtype_wins_and_is_checked_when_the_file_is_read(tmp_path, bf16_gpu):
    flux = get_preset("tiny-flux").teacher
    assert precision.for_spec(replace(flux, dtype="float32"), CUDA) == "float32"
    assert precision.for_spec(replace(flux, dtype="float16"), CUDA) == "float16"  # asked for explicitly: allowed
    bad = tmp_path / "p.yaml"
    bad.write_text("mine:\n  student: {source: tiny:student, dtype: fp17}\n  teacher: {source: tiny:teacher}\n")
    with pytest.raises(InputError, match="mine.*dtype"):
        load_file(bad)


def test_adq_dtype_sets_every_model_but_float16_is_refused_where_it_overflows(bf16_gpu):
    with configured(ADQ_DTYPE="float16"):
        assert precision.for_spec(get_preset("tiny").teacher, CUDA) == "float16"
        with pytest.raises(ModelError, match=r"ADQ_DTYPE=float16 .*FluxPipeline.*overflows"):
            precision.for_spec(get_preset("tiny-flux").teacher, CUDA)
        flux = replace(get_preset("tiny-flux").teacher, dtype="float16")
        assert precision.for_spec(flux, CUDA) == "float16"  # the preset's own word
    with configured(ADQ_DTYPE="float32"):
        assert precision.for_spec(get_preset("tiny-flux").teacher, CUDA) == "float32"


def test_shared_bases_are_keyed_by_their_precision(bf16_gpu):
    """Two presets that share a base in different precisions hold two copies, never one in the wrong dtype."""
    from adq.method.models.pipelines import _base_key

    teacher = get_preset("tiny").teacher
    assert _base_key(teacher, CUDA) != _base_key(replace(teacher, dtype="float32"), CUDA)

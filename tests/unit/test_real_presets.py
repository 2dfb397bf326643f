"""Today's real pairs as presets: hub ids as published, settings from their model cards, and without weights a
fast refusal that names what is missing (the twins prove that each family runs; these prove the wiring)."""

from __future__ import annotations

import pytest

from adq.core.errors import CalibrationError, ModelUnavailable
from adq.method.presets import get_preset
from tests.helpers import configured

PAIRS = {
    "flux-schnell-dev": ("black-forest-labs/FLUX.1-schnell", "black-forest-labs/FLUX.1-dev", 4, 0.0),
    "sd35-large-turbo": (
        "stabilityai/stable-diffusion-3.5-large-turbo",
        "stabilityai/stable-diffusion-3.5-large",
        4,
        0.0,
    ),
    "lcm-lora-sdxl": ("stabilityai/stable-diffusion-xl-base-1.0", "stabilityai/stable-diffusion-xl-base-1.0", 4, 1.0),
}


@pytest.mark.parametrize("name", PAIRS)
def test_the_real_pairs_name_the_published_weights(name):
    student, teacher, steps, guidance = PAIRS[name]
    p = get_preset(name)
    assert (p.student.source, p.teacher.source, p.student_steps, p.student_guidance) == (
        student,
        teacher,
        steps,
        guidance,
    )


def test_the_lcm_lora_student_is_a_lora_on_its_teachers_base():
    p = get_preset("lcm-lora-sdxl")
    assert [x.source for x in p.student.lora] == ["latent-consistency/lcm-lora-sdxl"]
    assert p.student.scheduler == "LCMScheduler" and p.student.source == p.teacher.source


@pytest.mark.parametrize(
    "name, role, missing",
    [
        ("flux-schnell-dev", "student", "FLUX.1-schnell"),
        ("flux-schnell-dev", "teacher", "FLUX.1-dev"),
        ("sd35-large-turbo", "student", "SD3.5-Large-Turbo"),
        ("lcm-lora-sdxl", "student", "LCM-LoRA SDXL"),
    ],
)
def test_without_weights_a_worker_refuses_to_start_naming_them(tmp_path, name, role, missing):
    from adq.workers.launch import preflight

    env = {"ADQ_PRESET": name, "ADQ_HOME": str(tmp_path), "ADQ_MODEL_DIR": str(tmp_path / "models")}
    with configured(**env), pytest.raises(ModelUnavailable, match=missing):
        preflight(role)


def test_the_lora_itself_is_checked_when_the_base_is_present(tmp_path):
    from adq.method.models.weights import check_available

    base = tmp_path / "models" / "stabilityai" / "stable-diffusion-xl-base-1.0"
    base.mkdir(parents=True)
    (base / "model_index.json").write_text("{}")
    lora = "LCM-LoRA SDXL LoRA weights 'latent-consistency/lcm-lora-sdxl'"
    with (
        configured(ADQ_HOME=str(tmp_path), ADQ_MODEL_DIR=str(tmp_path / "models")),
        pytest.raises(ModelUnavailable, match=lora),
    ):
        check_available(get_preset("lcm-lora-sdxl").student)


@pytest.mark.parametrize("name", PAIRS)
def test_their_jobs_are_refused_until_calibrated(sqlite_env, name):
    from adq.jobs.records import record

    with pytest.raises(CalibrationError, match=f"adq calibrate PROMPTS --preset {name}"):
        record("a lighthouse at dusk", preset=name)


def test_downloads_need_a_pinned_commit_and_take_safetensors_only(tmp_path):
    from adq.method.models.weights import hub_kwargs, locate

    sha = "0123456789abcdef0123456789abcdef01234567"
    with configured(ADQ_HOME=str(tmp_path), ADQ_MODEL_DIR=str(tmp_path / "models"), ADQ_ALLOW_DOWNLOADS="true"):
        with pytest.raises(ModelUnavailable, match="unpinned.*stabilityai/sdxl-turbo@<40-hex commit sha>"):
            locate("stabilityai/sdxl-turbo", "SDXL-Turbo")
        with pytest.raises(ModelUnavailable, match="unpinned"):
            locate("stabilityai/sdxl-turbo@main", "SDXL-Turbo")  # a branch moves: only a commit pins
        assert locate(f"stabilityai/sdxl-turbo@{sha}", "SDXL-Turbo") == "stabilityai/sdxl-turbo"
        assert hub_kwargs(f"stabilityai/sdxl-turbo@{sha}") == {"revision": sha, "use_safetensors": True}
        local = tmp_path / "models" / "stabilityai" / "sdxl-turbo"  # a local copy wins over the hub
        local.mkdir(parents=True)
        (local / "model_index.json").write_text("{}")
        assert locate(f"stabilityai/sdxl-turbo@{sha}", "SDXL-Turbo") == str(local)
    with configured(ADQ_HOME=str(tmp_path), ADQ_ALLOW_DOWNLOADS="false"):
        assert hub_kwargs(f"stabilityai/sdxl-turbo@{sha}") == {}  # nothing is fetched: the local files as they are

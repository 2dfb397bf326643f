"""Your own presets (ADQ_PRESETS_FILE) and your own estimator ({kind: python, factory: ...})."""

from __future__ import annotations

import textwrap

import pytest

from adq.method.presets import BUILT_IN, PresetFileError, get_preset, load_file
from tests.helpers import configured

MINE = """
my-sd15:
  student: {source: "tiny:sd15-student", label: our SD1.5 student}
  teacher: {source: "tiny:sd15-teacher", scheduler: DPMSolverMultistepScheduler}
  estimator: {kind: python, factory: "tests.plugins.estimators:brightness"}
  student_steps: 2
  student_guidance: 0.0
  student_size: [32, 32]
  teacher_steps: 3
  teacher_guidance: 1.5
  teacher_size: [32, 32]
  sigma: 0.6
  k: 30
tiny:
  student: {source: "tiny:student", label: tiny student, lora: [{source: /loras/ours, scale: 0.8}]}
  teacher: {source: "tiny:teacher", label: tiny teacher}
  estimator: tiny
  student_steps: 2
  student_guidance: 0.0
  student_size: [32, 32]
  teacher_steps: 6
  teacher_guidance: 5.0
  teacher_size: [32, 32]
  sigma: 0.5
"""


def _write(tmp_path, text: str, name: str = "mine.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_user_file_adds_presets_and_overrides_built_in_ones(tmp_path):
    path = _write(tmp_path, MINE)
    with configured(ADQ_PRESETS_FILE=str(path)):
        mine, tiny = get_preset("my-sd15"), get_preset("tiny")
        assert mine.origin == str(path) and tiny.origin == str(path)
        assert mine.estimator.factory == "tests.plugins.estimators:brightness" and mine.k == 30
        assert mine.teacher.label == "my-sd15 teacher"  # a label defaults from the preset and the role
        assert tiny.teacher_steps == 6 and tiny.student.lora[0].source == "/loras/ours"
        assert tiny.student.lora[0].scale == 0.8
        assert get_preset("shapes").origin == BUILT_IN
    assert get_preset("tiny").teacher_steps == 4 and get_preset("tiny").origin == BUILT_IN


def test_later_files_win(tmp_path):
    first = _write(tmp_path, MINE, "first.yaml")
    second = _write(tmp_path, MINE.replace("k: 30", "k: 70"), "second.yaml")
    with configured(ADQ_PRESETS_FILE=f"{first}:{second}"):
        assert get_preset("my-sd15").k == 70 and get_preset("my-sd15").origin == str(second)


@pytest.mark.parametrize(
    "change, field, message",
    [
        ("sigma: 0.6", "sigma: 1.5", "'sigma': Input should be less than or equal to 1"),
        ("k: 30", "k: many", "'k': Input should be a valid integer"),
        ("student_steps: 2\n  student_guidance", "student_stps: 2\n  student_guidance", "'student_stps': Extra"),
        ("  teacher_steps: 3\n", "", "'teacher_steps': Field required"),
        ('factory: "tests.plugins.estimators:brightness"', "factory: nocolon", "'estimator.factory'"),
        (', factory: "tests.plugins.estimators:brightness"', "", "needs factory"),
        ("scheduler: DPMSolverMultistepScheduler", "scheduler: rm -rf", "'teacher.scheduler'"),
        ("student_size: [32, 32]", "student_size: [32, 0]", "each side must be between 8 and 4096"),
        ("kind: python", "kind: hpsv9", "'estimator"),
        ("k: 30\n", "k: 30\n  safety: {kind: python}\n", "needs factory"),
        ("k: 30\n", "k: 30\n  safety: {kind: diffusers}\n", "needs source"),
        ("k: 30\n", "k: 30\n  safety: {kind: python, factory: a:b, placeholder: pink}\n", "'safety.placeholder'"),
        ("k: 30\n", "k: 30\n  output_format: gif\n", "'output_format'"),
        ("k: 30\n", "k: 30\n  sizes: [[30, 32]]\n", "each side must be a multiple of 8"),
    ],
)
def test_an_invalid_entry_names_the_file_the_preset_and_the_field(tmp_path, change, field, message):
    text = MINE.replace(change, field, 1)
    assert text != MINE
    path = _write(tmp_path, text)
    with pytest.raises(PresetFileError) as caught:
        load_file(path)
    assert str(path) in str(caught.value) and "preset 'my-sd15'" in str(caught.value)
    assert message in str(caught.value), str(caught.value)


@pytest.mark.parametrize("text", ["[1, 2]", "just: [a, list", ""])
def test_a_file_that_is_not_a_preset_table_is_refused(tmp_path, text):
    with pytest.raises(PresetFileError, match="presets file"):
        load_file(_write(tmp_path, text))
    with pytest.raises(PresetFileError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")


def test_the_cli_checks_files_and_refuses_to_start_on_an_invalid_one(tmp_path, capsys):
    from adq.cli import main

    good, bad = _write(tmp_path, MINE), _write(tmp_path, MINE.replace("k: 30", "k: 300"), "bad.yaml")
    assert main(["presets", "--check", str(good)]) == 0
    assert "2 valid preset(s): my-sd15, tiny" in capsys.readouterr().out
    assert main(["presets", "--check", str(bad)]) == 2
    assert "bad.yaml: preset 'my-sd15': field 'k'" in capsys.readouterr().err
    with configured(ADQ_PRESETS_FILE=str(good)):
        assert main(["presets"]) == 0
        listing = capsys.readouterr().out
        assert f"[{good}]" in listing and "[built in]" in listing
    with configured(ADQ_PRESETS_FILE=str(bad)):
        assert main(["presets"]) == 2 and main(["worker", "student"]) == 2
        assert "field 'k'" in capsys.readouterr().err
        from adq.gateway.app import create_app

        with pytest.raises(PresetFileError, match="field 'k'"):
            create_app()


def test_a_python_estimator_scores_in_batches_and_calibrates(tmp_path):
    from adq.control.calibrate import calibrate
    from adq.jobs.db.migrate import upgrade
    from adq.method.models import registry

    path = _write(tmp_path, MINE)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"a {'bright' if i % 2 else 'dark'} room {i}\n" for i in range(12)))
    with configured(ADQ_PRESETS_FILE=str(path), ADQ_HOME=str(tmp_path / "home"), ADQ_DATABASE_URL=""):
        upgrade()
        result = calibrate(prompts, preset="my-sd15", batch_size=5, progress=False, out=tmp_path / "p.json")
        inner = registry.estimator("my-sd15").inner
        assert inner.calls == [5, 5, 2]  # batched as the built-in estimators are
        p = result.percentiles
        assert p.tau(50) > 0.5 > p.tau(10)  # the "bright" half scores 0.5 higher
        assert result.calibration_id is not None


def test_a_broken_factory_is_refused_by_name():
    from adq.core.errors import InputError, ScoringError
    from adq.method.models.estimators import CheckedEstimator, python_estimator

    with pytest.raises(InputError, match="has no score"):
        python_estimator("tests.plugins.estimators:broken", None)
    with pytest.raises(InputError, match="cannot be imported"):
        python_estimator("tests.plugins.nowhere:thing", None)

    class Liar:
        def score(self, prompts, images):
            return [float("nan")] * len(images)

    with pytest.raises(ScoringError, match="not finite"):
        CheckedEstimator(Liar(), "liar").score(["a"], [object()])

    class Short:
        def score(self, prompts, images):
            return [0.0]

    with pytest.raises(ScoringError, match="gave 1 scores for 2 images"):
        CheckedEstimator(Short(), "short").score(["a", "b"], [object(), object()])


def test_the_docs_example_presets_file_validates(tmp_path):
    from tests.helpers import ROOT

    page = (ROOT / "docs" / "models.md").read_text()
    block = page.split("```yaml\n# my-presets.yaml", 1)[1]
    example = block.split("\n", 1)[1].split("```", 1)[0]  # after the comment line, to the fence
    found = load_file(_write(tmp_path, example))
    assert sorted(found) == ["flux-fast", "hyper-sd15"]
    assert found["flux-fast"].estimator.factory == "ourteam.rewards:load_hps"
    assert found["hyper-sd15"].student.lora[0].weight_name == "Hyper-SD15-4steps-lora.safetensors"

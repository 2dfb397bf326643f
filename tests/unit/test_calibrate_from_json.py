"""`adq calibrate --from-json FILE --preset NAME`: a percentiles file made elsewhere becomes a preset's calibration."""

from __future__ import annotations

import json

import pytest

from adq.cli import main
from adq.core.errors import CalibrationError


def test_a_reference_format_file_unlocks_a_preset_under_its_serving_settings(sqlite_env, tmp_path, capsys):
    from adq.jobs.records import record
    from adq.method.presets import get_preset

    reference = {
        "10": -0.6,
        "20": -0.2,
        "30": 0.15,
        "40": 0.38,
        "50": 0.62,
        "60": 0.84,
        "70": 1.09,
        "80": 1.33,
        "90": 1.64,
    }
    path = tmp_path / "IR_percentiles_lcm.json"
    path.write_text(json.dumps(reference))
    with pytest.raises(CalibrationError, match="lcm-sdxl"):
        record("a lighthouse", preset="lcm-sdxl")
    assert main(["calibrate", "--from-json", str(path), "--preset", "lcm-sdxl"]) == 0
    assert "recorded" in capsys.readouterr().out
    row, created = record("a lighthouse", preset="lcm-sdxl", k=50)
    assert created and row.tau == pytest.approx(0.62)
    p = get_preset("lcm-sdxl")
    assert row.student_steps == p.student_steps and row.student_guidance == p.student_guidance


def test_our_files_carry_their_settings_and_those_win(sqlite_env, tmp_path):
    from adq.jobs.records import record
    from adq.method import percentiles as cal

    settings = {"steps": 3, "guidance": 0.0, "width": 32, "height": 32}
    made = cal.from_scores([i / 100 for i in range(100)], {"student_settings": settings, "n_samples": 100})
    path = cal.save(made, tmp_path / "p.json")
    with pytest.raises(CalibrationError, match="steps"):
        record("a lighthouse", preset="tiny", student_steps=3, seed=1)
    # --student-steps 2 is overridden by the file's own settings (3 steps): what was sampled is what counts.
    assert main(["calibrate", "--from-json", str(path), "--preset", "tiny", "--student-steps", "2"]) == 0
    row, _ = record("a lighthouse", preset="tiny", student_steps=3, seed=1, k=50)
    assert row.tau == pytest.approx(made.tau(50))


def test_from_json_needs_a_preset_and_no_prompt_file(sqlite_env, tmp_path, capsys):
    assert main(["calibrate", "--from-json", str(tmp_path / "x.json")]) == 2
    assert "--from-json FILE records a file for --preset NAME" in capsys.readouterr().err
    assert main(["calibrate"]) == 2

import json
import math

import pytest

from adq.core.errors import CalibrationError, InputError
from adq.method import percentiles as cal

SEED_TURBO = {
    "10": -0.30758287012577057,
    "20": 0.12398714572191238,
    "30": 0.41777150332927704,
    "40": 0.6708312630653381,
    "50": 0.9034394025802612,
    "60": 1.1335328817367554,
    "70": 1.3630441427230835,
    "80": 1.5732349157333374,
    "90": 1.7676664590835571,
}


def test_tau_for_every_k_matches_numpy_percentile():
    import numpy as np

    rng = np.random.default_rng(0)
    scores = rng.normal(size=997)
    p = cal.from_scores(scores)
    for k in range(101):
        assert p.tau(k) == pytest.approx(float(np.percentile(scores, k)), abs=1e-12)


def test_fraction_below_tau_is_k_percent():
    import numpy as np

    scores = np.random.default_rng(1).normal(size=10_000)
    p = cal.from_scores(scores)
    for k in (1, 10, 25, 50, 73, 90, 99):
        routed = sum(cal.below_cutoff(s, p.tau(k), k) for s in scores) / len(scores)
        assert routed == pytest.approx(k / 100, abs=0.002)
    assert not any(cal.below_cutoff(s, p.tau(0), 0) for s in scores)
    assert all(cal.below_cutoff(s, p.tau(100), 100) for s in scores)


def test_seed_format_round_trip(tmp_path):
    path = tmp_path / "IR_percentiles_turbo.json"
    path.write_text(json.dumps(SEED_TURBO))
    p = cal.load(path)
    assert p.tau(50) == SEED_TURBO["50"]
    assert p.tau(15) == pytest.approx((SEED_TURBO["10"] + SEED_TURBO["20"]) / 2)
    with pytest.raises(CalibrationError, match="k=5 is outside the calibrated percentiles 10..90"):
        p.tau(5)
    assert p.tau(0) is None and p.tau(100) is None
    out = cal.save(p, tmp_path / "copy.json")
    written = json.loads(out.read_text())
    assert {k: v for k, v in written.items()} == SEED_TURBO  # the reference's own reader sees the same dict


def test_full_calibration_keeps_seed_keys_and_adds_every_integer(tmp_path):
    p = cal.from_scores([0.1 * i for i in range(50)], {"preset": "tiny"})
    data = json.loads(cal.save(p, tmp_path / "c.json").read_text())
    assert set(SEED_TURBO) <= set(data)
    assert [k for k in data if k != "meta"] == [str(k) for k in range(101)]
    assert data["meta"] == {"preset": "tiny"}
    again = cal.load(tmp_path / "c.json")
    assert again.values == p.values and again.meta == p.meta


@pytest.mark.parametrize(
    "bad, message",
    [
        ({}, "no percentiles"),
        ({"50": "high"}, "non-numeric"),
        ({"50": math.nan}, "non-numeric"),
        ({"101": 1.0}, "not an integer from 0 to 100"),
        ({"10": 1.0, "20": 0.5}, "must not decrease"),
    ],
)
def test_bad_calibration_files_are_refused(bad, message):
    with pytest.raises(InputError, match=message):
        cal.parse(bad)


def test_prompt_files(tmp_path):
    csv = tmp_path / "captions.csv"
    csv.write_text('image_id,caption\n1,"A cat, sitting"\n2,A dog\n3,\n')
    assert cal.read_prompts(csv) == ["A cat, sitting", "A dog"]
    txt = tmp_path / "prompts.txt"
    txt.write_text("# comment\none\n\n two \n")
    assert cal.read_prompts(txt) == ["one", "two"]
    (tmp_path / "bad.csv").write_text("text\nhello\n")
    with pytest.raises(InputError, match="no 'caption' column"):
        cal.read_prompts(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="does not exist"):
        cal.read_prompts(tmp_path / "missing.txt")

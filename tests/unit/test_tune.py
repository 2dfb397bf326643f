"""`adq tune`: the frontier on a grid whose answer is known, the search's reuse of model passes and its resume,
the presets file it writes, and the controller moving a job along a recorded frontier."""

from __future__ import annotations

import numpy as np
import pytest

from adq.core.errors import InputError
from adq.method import frontier
from adq.method.frontier import Point, Setting
from adq.method.presets import EstimatorSpec, get_preset, load_file
from tests.helpers import configured

JUDGE = "tests.plugins.estimators:brightness"  # a second estimator: the null preset routes by its own


def _p(k, T, steps, quality, strategy="regenerate", S=2, teacher_per_image=None):
    return Point(Setting(S, k, strategy, None, T), steps, teacher_per_image or T, quality)


def test_the_frontier_of_a_grid_with_a_known_answer():
    a, b, c = _p(0, 4, 2.0, 0.50, "student"), _p(30, 4, 3.2, 0.60), _p(50, 8, 6.0, 0.70)
    dominated = [_p(30, 8, 4.4, 0.58), _p(60, 8, 6.8, 0.69), _p(50, 4, 6.0, 0.65), _p(20, 4, 2.8, 0.50)]
    teacher = Point(Setting(0, 100, "teacher", None, 20), 20.0, 20.0, 0.69)
    front = frontier.pareto([*dominated, c, teacher, b, a])
    assert front == [a, b, c]  # the teacher alone costs more than c and is no better
    assert frontier.best_within(front, 5.0) == b and frontier.best_within(front, 1.0) is None
    assert frontier.best_within([b, _p(40, 4, 3.6, 0.6 + 1e-12)], 9) == b  # a tie goes to the cheaper
    # The controller's choice: the best point whose teacher work per job (k/100 x T) fits
    assert frontier.best_for_work([a, b, c], 2, work=1.2) == b  # 0.3 x 4 = 1.2
    assert frontier.best_for_work([a, b, c], 2, work=4.0) == c  # 0.5 x 8 = 4.0
    assert frontier.best_for_work([a, b, c], 4, work=4.0) is None  # no point with the job's student steps
    assert frontier.from_json(frontier.to_json(front)) == front


@pytest.fixture()
def null_home(sqlite_env):
    with configured(ADQ_PRESET="null"):
        yield sqlite_env


def _tune(tmp_path, prompts, **kwargs):
    from adq.method.tuning import search as tune

    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n")
    grid = tune.Grid(student_steps=(1, 2), teacher_steps=(4, 8), sigmas=(0.5,), ks=(0, 50, 100))
    return tune.run("null", str(path), judge=JUDGE, out_dir=tmp_path / "out", grid=grid, **kwargs)


def test_the_search_runs_each_pass_once_and_resumes_from_its_cache(null_home, tmp_path, monkeypatch):
    from adq.method.tuning import search as tune

    prompts = [f"a bright lamp {i}" if i % 3 else f"a dark room {i}" for i in range(30)]
    made = []
    real = tune.Search._pass
    monkeypatch.setattr(
        tune.Search, "_pass", lambda self, name, *a, **kw: made.append(name) or real(self, name, *a, **kw)
    )
    first = _tune(tmp_path, prompts, budgets=(3.0,))
    # 2 student passes, 2 regenerations, 2 x 1 x 2 refinements, for 2 x (3 + 2) + 2 x 2 + 2 adaptive and baseline points
    assert sorted(first["passes_run"]) == sorted(
        ["student-S1", "student-S2", "regenerate-T4", "regenerate-T8"]
        + [f"refine-S{s}-sigma0.5-T{t}" for s in (1, 2) for t in (4, 8)]
    )
    assert len(made) == 8 and len(first["points"]) == 2 * (1 + 2 * 3 + 2 * 2) + 2
    refined = np.load(next((tmp_path / "out" / "cache").glob("*/refine-S2-sigma0.5-T4.npz")))
    assert len(refined["index"]) == 15  # refinement ran only on the prompts k=50 routes, not all 30
    again = _tune(tmp_path, prompts, budgets=(3.0,))
    assert again["passes_run"] == [] and again["points"] == first["points"]  # every pass came from the cache


def test_the_recommended_setting_is_a_presets_file_that_loads(null_home, tmp_path):
    prompts = [f"a bright lamp {i}" for i in range(24)]
    res = _tune(tmp_path, prompts, budgets=(6.0,))
    (rec,) = res["recommended"]
    assert rec["mean_steps"] <= 6.0
    loaded = load_file(tmp_path / "out" / "null-tuned-6.yaml")
    preset = loaded["null-tuned-6"]
    s = rec["setting"]
    assert (preset.student_steps, preset.k) == (s["student_steps"], s["k"])
    assert preset.percentiles_path.is_file() and (tmp_path / "out" / "frontier.png").stat().st_size > 1000
    with configured(ADQ_PRESETS_FILE=str(tmp_path / "out" / "null-tuned-6.yaml")):  # it serves: τ is calibrated
        from adq.jobs.db.calibrations import for_job
        from adq.method.params import resolve

        calibration_id, percentiles = for_job(resolve("a lamp", preset="null-tuned-6"))
        assert calibration_id is not None and percentiles.meta["n_samples"] == 24
    assert "| setting |" in (tmp_path / "out" / "frontier.md").read_text()


def test_bad_inputs_are_refused_before_any_model_runs(null_home, tmp_path):
    from adq.method.tuning import search as tune

    with pytest.raises(InputError, match="at least 20"):
        _tune(tmp_path, ["a cat"] * 5)
    grid = tune.Grid(student_steps=(2,))
    with pytest.raises(InputError, match="must not be the router's own"):
        tune.check_search(get_preset("null"), ["a"] * 20, grid, EstimatorSpec("null"))
    with pytest.raises(InputError, match="names no judge"):
        tune.check_search(get_preset("null"), ["a"] * 20, grid, None)
    with pytest.raises(InputError, match="takes shapes prompts only"):
        tune.check_search(get_preset("shapes"), ["a cat"] * 20, grid, None)
    with pytest.raises(InputError, match="below the cheapest"):
        _tune(tmp_path, [f"p{i}" for i in range(20)], budgets=(0.5,))

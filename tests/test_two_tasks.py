"""The two-task benchmark's analysis (benchmarks/two_tasks.py): its interval against SciPy's Welch test, the
best fixed recipe chosen over both tasks, and its bad input (no training here)."""
import json
import math
import statistics
import subprocess
import sys

import pytest
from scipy import stats

from benchmarks import two_tasks
from benchmarks.runs import paired


def gap(*points):
    return {"gaps": list(points)}


def test_two_task_interval_is_welchs_on_the_mean_of_the_task_means():
    a, b = [1.0, 2.5, 0.4], [3.0, -1.0, 2.2, 0.9]
    got = two_tasks.two_task_gap([gap(*a), gap(*b)])
    welch = stats.ttest_ind(a, b, equal_var=False)  # the same variances and degrees of freedom, for a - b
    assert got["df"] == pytest.approx(float(welch.df), rel=1e-9)
    assert got["mean"] == pytest.approx((statistics.fmean(a) + statistics.fmean(b)) / 2)
    se = math.sqrt(statistics.variance(a) / 3 + statistics.variance(b) / 4) / 2
    half = stats.t.ppf(0.975, math.floor(welch.df)) * se
    assert got["ci95"] == pytest.approx([got["mean"] - half, got["mean"] + half], abs=2e-3)


def test_two_tasks_of_the_same_spread_have_twice_one_tasks_degrees_of_freedom():
    got = two_tasks.two_task_gap([gap(1.0, 2.0, 4.0), gap(5.0, 6.0, 8.0)])
    assert got["df"] == pytest.approx(4.0)
    assert got["per_task"] == pytest.approx([7 / 3, 19 / 3])
    assert got["mean"] == pytest.approx(13 / 3)


def study(data, **methods):
    return {"preset": "cpu", "env": {"rounds": 8, "steps_per_round": 36, **({"data": data} if data else {})},
            "seeds": [1, 2, 3], "machine": {"cpu": "CPU"},
            "methods": {m: {"test_mean_f1": list(v)} for m, v in methods.items()}}


def write_tasks(folder, main, noshift, tags=None):
    for tag, data in zip(tags or two_tasks.TASKS.values(), (main, noshift), strict=True):
        (folder / f"learning_{tag}.json").write_text(json.dumps(data))


def test_the_best_fixed_recipe_is_best_over_both_tasks_and_gaps_pair_within_a_task(tmp_path):
    # strength+1 wins the main task and loses the other; prior is second on both and best over both
    write_tasks(tmp_path,
                study(None, ppo=[0.56, 0.57, 0.58], prior=[0.54, 0.55, 0.56], **{"strength+1": [0.60, 0.60, 0.60]}),
                study("synth:shift=0", ppo=[0.90, 0.91, 0.92], prior=[0.89, 0.90, 0.91],
                      **{"strength+1": [0.80, 0.80, 0.80], "strength-2": [0.95, 0.95, 0.95]}))
    data = two_tasks.analyse(two_tasks.read_tasks(tmp_path))
    assert data["best_fixed_recipe"] == "prior"  # strength-2 ran on one task only: not a recipe for both
    assert "strength-2" not in data["scores"]
    assert data["two_task_score"]["strength+1"] == pytest.approx(70.0)
    vs_prior = data["gaps"]["ppo"]["prior"]
    assert vs_prior["per_task"] == pytest.approx([2.0, 1.0])
    assert vs_prior["ci95"] == pytest.approx([1.5, 1.5])  # no spread on either task
    assert two_tasks.verdict(vs_prior) == "met"
    assert data["gaps"]["ppo"]["strength+1"]["per_task"] == pytest.approx([-3.0, 11.0])


def test_the_module_writes_its_json_and_plot_and_rerenders_them(tmp_path):
    write_tasks(tmp_path, study(None, ppo=[0.5, 0.6, 0.55], prior=[0.5, 0.58, 0.5]),
                study("synth:shift=0", ppo=[0.9, 0.8, 0.85], prior=[0.88, 0.8, 0.86]))
    two_tasks.main(["--out", str(tmp_path)])
    name, figure, _ = two_tasks.files(None)
    first = (tmp_path / name).read_text()
    assert (tmp_path / figure).stat().st_size > 1000
    assert json.loads(first)["gaps"]["ppo"]["prior"]["per_task"] == pytest.approx(
        [paired([0.5, 0.6, 0.55], [0.5, 0.58, 0.5])["mean"], paired([0.9, 0.8, 0.85], [0.88, 0.8, 0.86])["mean"]])
    two_tasks.main(["--out", str(tmp_path), "--report"])
    assert (tmp_path / name).read_text() == first


def test_other_studies_are_analysed_apart_under_their_tag(tmp_path):
    # the plan's own studies and a confirmation's, with opposite results: each analysis reads only its own
    write_tasks(tmp_path, study(None, ppo=[0.5, 0.6, 0.55], prior=[0.5, 0.58, 0.5]),
                study("synth:shift=0", ppo=[0.9, 0.8, 0.85], prior=[0.88, 0.8, 0.86]))
    write_tasks(tmp_path, study(None, ppo=[0.5, 0.5, 0.5], prior=[0.6, 0.6, 0.6]),
                study("synth:shift=0", ppo=[0.8, 0.8, 0.8], prior=[0.9, 0.9, 0.9]), tags=("c_main", "c_noshift"))
    two_tasks.main(["--out", str(tmp_path)])
    two_tasks.main(["--out", str(tmp_path), "--tasks", "c_main", "c_noshift", "--tag", "c"])
    plan, confirm = (json.loads((tmp_path / two_tasks.files(tag)[0]).read_text()) for tag in (None, "c"))
    assert two_tasks.files("c")[0] == "learning_two_tasks_c.json" and (tmp_path / two_tasks.files("c")[1]).exists()
    assert plan["gaps"]["ppo"]["prior"]["mean"] > 0
    assert confirm["gaps"]["ppo"]["prior"]["per_task"] == pytest.approx([-10.0, -10.0])
    assert confirm["tasks"]["main task"]["study"] == "learning_c_main.json"
    two_tasks.main(["--out", str(tmp_path), "--tag", "c", "--report"])  # re-renders from its own file
    assert json.loads((tmp_path / two_tasks.files("c")[0]).read_text()) == confirm


@pytest.mark.parametrize("case, message", [
    ("missing", "learning_cross_noshift.json does not exist"),
    ("sizes", "the two tasks' studies ran different sizes"),
    ("untagged", "--tasks other than the plan's need a --tag"),
])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, case, message):
    main = study(None, ppo=[0.5, 0.6, 0.55], prior=[0.5, 0.58, 0.5])
    if case == "missing":
        (tmp_path / "learning_cross_main.json").write_text(json.dumps(main))
    else:
        other = study("synth:shift=0", ppo=[0.9, 0.8, 0.85], prior=[0.88, 0.8, 0.86])
        other["env"]["rounds"] = 10
        write_tasks(tmp_path, main, other)
    extra = ["--tasks", "cross_main", "other"] if case == "untagged" else []
    result = subprocess.run([sys.executable, "-m", "benchmarks.two_tasks", "--out", str(tmp_path), *extra],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and message in result.stderr
    assert not any(tmp_path.glob("learning_two_tasks*"))

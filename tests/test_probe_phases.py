"""The probe runs' op effects per phase of the run: the tests, the recipes and the cross-fitted schedule gain."""
import json

import numpy as np
import pytest
from scipy import stats

from adaptive_de.augment import OPS
from adaptive_de.errors import run_cli
from agents.fitted import op_effects, probe_samples
from benchmarks import probe_phases
from tests.conftest import PROBE_ROUNDS as ROUNDS
from tests.conftest import probe_runs, write_probe_study

HUE, ERASE, ROTATE = OPS.index("hue"), OPS.index("erase"), OPS.index("rotate")


def effects_by_round(early: np.ndarray, late: np.ndarray) -> np.ndarray:
    return np.array([early if t < ROUNDS // 2 else late for t in range(ROUNDS)])


def base_effects() -> np.ndarray:
    effects = np.zeros(len(OPS))
    effects[ERASE], effects[ROTATE] = -0.8, 0.5
    return effects


def hue_turns() -> np.ndarray:
    """``base_effects`` with hue +0.6 per level in the first half of the run and -0.6 in the second."""
    early, late = base_effects(), base_effects()
    early[HUE], late[HUE] = 0.6, -0.6
    return effects_by_round(early, late)


def test_chi2_tail_matches_scipy():
    for statistic, dof in ((39.3, 16), (26.9, 15), (0.5, 3), (120.0, 48)):
        assert probe_phases.chi2_sf(statistic, dof) == pytest.approx(stats.chi2.sf(statistic, dof), rel=1e-9)


def test_a_change_of_direction_is_found_and_a_change_of_size_is_told_from_it():
    turned = probe_phases.phase_fits(probe_runs(hue_turns(), runs=4, sigma=1.0), phases=2)
    assert probe_phases.equality_test(turned)["p"] < 1e-3
    assert probe_phases.scale_test(turned)["p"] < 1e-3  # hue turns round while the rest keeps its sign
    shrunk = probe_phases.phase_fits(probe_runs(effects_by_round(base_effects(), 0.3 * base_effects()), runs=4,
                                                sigma=0.5), phases=2)
    assert probe_phases.equality_test(shrunk)["p"] < 1e-3
    size = probe_phases.scale_test(shrunk)
    assert size["p"] > 0.05 and size["scales"][0] == 1.0 and size["scales"][1] == pytest.approx(0.3, abs=0.1)
    same = probe_phases.phase_fits(probe_runs(base_effects(), runs=4, sigma=1.0), phases=4)
    assert probe_phases.equality_test(same)["dof"] == 3 * len(OPS) and probe_phases.equality_test(same)["p"] > 0.05


def test_the_phases_fit_their_own_rounds_and_build_their_own_recipes():
    runs = probe_runs(hue_turns(), runs=4, sigma=0.5)
    fits = probe_phases.phase_fits(runs, phases=2)
    np.testing.assert_allclose(fits[1]["effect"], op_effects(*probe_samples([run[8:] for run in runs]))["effect"])
    early, late_recipe = (probe_phases.recipe_list(fit) for fit in fits)
    assert early[HUE] == 4 and late_recipe[HUE] == 0 and early[ERASE] == late_recipe[ERASE] == 0
    gains = probe_phases.heldout_gain(runs, phases=2)
    # hue 4 early and 0 late, against one recipe that leaves it at 3 (its effect averages 0): (0.6 x 1 + 0.6 x 3) / 2
    assert len(gains) == 4 and all(g > 0 for g in gains) and np.mean(gains) == pytest.approx(1.2, abs=0.5)
    steady = probe_phases.heldout_gain(probe_runs(base_effects(), runs=4, sigma=0.5), phases=2)
    assert abs(np.mean(steady)) < 0.2 and 0.0 in steady  # most folds' phases rebuild the one recipe


def test_weights_follow_each_rounds_noise():
    sigma = np.linspace(3.0, 0.2, ROUNDS)
    samples = probe_samples(probe_runs(base_effects(), runs=8, sigma=sigma))
    weights = probe_phases.round_weights(samples, op_effects(*samples), ROUNDS)
    groups = samples[2]
    noise = np.sqrt(1 / np.array([weights[groups % ROUNDS == t][0] for t in range(ROUNDS)]))
    assert stats.spearmanr(noise, sigma).statistic > 0.8  # quieter rounds weigh more
    # each round's variance comes from 32 residuals less their round means (3 in 4 kept): a rough estimate
    assert abs(np.mean(np.log(noise * np.sqrt(4 / 3) / sigma))) < 0.15


def test_the_command_writes_the_reading_and_refuses_phases_that_do_not_divide(tmp_path, capsys):
    source = write_probe_study(tmp_path / "probe.json", probe_runs(base_effects(), runs=4, sigma=1.0), [1, 2, 3, 4])
    out = tmp_path / "out"
    assert run_cli(probe_phases.main, ["--probe", source, "--phases", "3", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "error: --phases must be at least 2 and divide the probe's 16 rounds, not 3\n"
    assert not out.exists()
    assert run_cli(probe_phases.main, ["--report", "--out", str(out)]) == 2  # nothing to re-render yet
    assert capsys.readouterr().err == (f"error: {out / 'probe_phases.json'} is missing or not JSON: run the study "
                                       "without --report first\n")
    assert run_cli(probe_phases.main, ["--probe", source, "--out", str(out)]) == 0
    data = json.loads((out / "probe_phases.json").read_text())
    assert [p["rounds"] for p in data["phases"]] == [[1, 8], [9, 16]] and len(data["schedule_gain_heldout"]) == 4
    assert (out / "probe_phases.png").exists() and "| erase |" in capsys.readouterr().out


def test_a_tagged_reading_keeps_apart_from_the_first(tmp_path, capsys):
    source = write_probe_study(tmp_path / "probe.json", probe_runs(hue_turns(), runs=4, sigma=1.0), [1, 2, 3, 4])
    out = tmp_path / "out"
    assert run_cli(probe_phases.main, ["--probe", source, "--out", str(out)]) == 0
    assert run_cli(probe_phases.main, ["--probe", source, "--tag", "late", "--phases", "4", "--out", str(out)]) == 0
    first, tagged = (json.loads((out / name).read_text()) for name in ("probe_phases.json", "probe_phases_late.json"))
    assert len(first["phases"]) == 2 and len(tagged["phases"]) == 4 and tagged["tag"] == "late"
    assert (out / "probe_phases.png").exists() and (out / "probe_phases_late.png").exists()
    capsys.readouterr()
    assert run_cli(probe_phases.main, ["--report", "--tag", "late", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "(docs/probe_phases_late.json)" in text and "![probe phases](probe_phases_late.png)" in text
    assert probe_phases.files("late")[2].endswith(", `late`")

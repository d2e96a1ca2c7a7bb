"""The study scripts' own logic: learning-study bookkeeping, the reward-signal analysis and the GPU-check report
(no training here)."""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from adaptive_de.augment import MAX_LEVEL, OPS
from adaptive_de.errors import UserError
from agents.population import GRID, STRENGTH_MENU, STRENGTHS
from benchmarks import (
    carry_bandit,
    context_bandit,
    default_run,
    family_bandit,
    gpu_report,
    learning,
    reward_signal,
    rewards_study,
    runs,
    strength_bandit,
    train_speed,
    update_bandit,
)
from envs.wrappers import menu_actions


def scores(*values):
    return {"test_mean_f1": list(values), "test_fp_rate": [0.1] * len(values), "compute_inner_steps": 768}


def student_t_cdf(x: float, df: int, n: int = 200_000) -> float:
    """The Student-t CDF by the trapezoid rule on its density (an independent check of the quantile table)."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    grid = np.linspace(0.0, x, n)
    density = np.exp(log_c - (df + 1) / 2 * np.log1p(grid ** 2 / df))
    return 0.5 + float(np.sum((density[1:] + density[:-1]) / 2 * np.diff(grid)))


@pytest.mark.parametrize("df", sorted(runs.T975))
def test_t_quantiles_are_the_975th_percentiles(df):
    assert student_t_cdf(runs.T975[df], df) == pytest.approx(0.975, abs=2e-4)


def test_paired_gaps_and_interval():
    gap = runs.paired([0.50, 0.44, 0.47], [0.47, 0.45, 0.45])
    np.testing.assert_allclose(gap["gaps"], [3.0, -1.0, 2.0], atol=1e-9)
    half = runs.T975[2] * np.std([3.0, -1.0, 2.0], ddof=1) / math.sqrt(3)
    assert gap["mean"] == pytest.approx(4 / 3)
    np.testing.assert_allclose(gap["ci95"], [4 / 3 - half, 4 / 3 + half])
    assert runs.paired([0.5], [0.4])["ci95"] is None  # one seed: no interval


def test_comparisons_pick_the_best_non_learning_method_and_the_preflight():
    methods = {"ppo": scores(0.50, 0.44), "prior": scores(0.46, 0.43), "none": scores(0.30, 0.20),
               "best_fixed": scores(0.47, 0.45), learning.ORACLE: scores(0.9, 0.9)}
    c = learning.comparisons(methods)
    assert c["best_non_learning"] == "best_fixed"  # the oracle is a reference, not a method
    np.testing.assert_allclose(c["ppo_vs_best_non_learning"]["gaps"], [3.0, -1.0], atol=1e-9)
    np.testing.assert_allclose(c["ppo_vs_prior"]["gaps"], [4.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(c[learning.PREFLIGHT]["gaps"], [43.0, 45.0], atol=1e-9)
    row = next(line for line in learning.table({"methods": methods, "comparisons": c}).splitlines()
               if line.startswith("| ppo "))
    assert "| 768 |" in row and "+1.00 [" in row and "(per seed: +3.00, -1.00)" in row


def test_on_a_drifting_stream_the_preflight_holds_the_switch_against_every_constant_its_halves_included():
    methods = {"ppo": scores(0.50, 0.44), learning.ORACLE: scores(0.55, 0.53), "none": scores(0.57, 0.52),
               "strength+2": scores(0.49, 0.48), learning.ORACLE_SWITCH: scores(0.60, 0.58)}
    c = learning.comparisons(methods)
    assert (c["oracle"], c["best_constant"]) == (learning.ORACLE_SWITCH, "none")
    np.testing.assert_allclose(c[learning.PREFLIGHT]["gaps"], [3.0, 6.0], atol=1e-9)
    assert "`oracle_switch` vs the best constant-recipe population `none`" in learning.targets(
        {"methods": methods, "comparisons": c})
    assert c["best_non_learning"] == "none"  # the schedule is a reference, as the oracle is


def test_the_switch_oracle_narrows_with_the_stream_and_needs_a_stream_that_drifts_at_a_round_boundary():
    from types import SimpleNamespace

    from adaptive_de.data import FaceParsingSet
    from adaptive_de.data.labels import LAPA
    from agents.baselines import parse_fixed, parse_switch
    from benchmarks.headroom import MATCHED_LEVELS

    def population(**stream):
        train = FaceParsingSet(np.zeros(1), np.zeros(1), LAPA, ["0"], **stream)
        return SimpleNamespace(reference=SimpleNamespace(data={"train": train}), config=SimpleNamespace(rounds=16))

    early = FaceParsingSet(np.zeros(1), np.zeros(1), LAPA, ["0"])
    switch, before, after = parse_switch(learning.switch_spec(population(early=early, early_until=0.5))
                                         .removeprefix("switch:"))
    assert switch == 8 and not before.any()
    assert np.array_equal(after, parse_fixed(learning.ORACLE_SPEC.removeprefix("fixed:")))
    assert after[OPS.index("rotate")] == MATCHED_LEVELS["rotate"]
    for stream in ({}, {"early": early, "early_until": 0.3}):  # no drift; a switch within round 5 (0.3 x 16)
        with pytest.raises(UserError, match="narrows at the end of a round"):
            learning.switch_spec(population(**stream))


def test_the_preflight_holds_the_oracle_against_the_strongest_constant_population_that_ran():
    methods = {"ppo": scores(0.50, 0.44), "best_fixed": scores(0.47, 0.45), "strength+2": scores(0.49, 0.48),
               "strength_grid": scores(0.48, 0.46), learning.ORACLE: scores(0.52, 0.47), "prior": scores(0.6, 0.6)}
    c = learning.comparisons(methods)
    assert c["best_constant"] == "strength+2"  # prior is no constant recipe, however well it scores
    np.testing.assert_allclose(c[learning.PREFLIGHT]["gaps"], [3.0, -1.0], atol=1e-9)
    assert "`oracle` vs the best constant-recipe population `strength+2`" in learning.targets(
        {"methods": methods, "comparisons": c})
    assert learning.PREFLIGHT not in learning.comparisons({"ppo": scores(0.5, 0.4), learning.ORACLE: scores(0.6, 0.6)})
    fitted = learning.comparisons({**methods, learning.FITTED: scores(0.51, 0.49)})  # one recipe, from the probe
    assert fitted["best_constant"] == learning.FITTED
    np.testing.assert_allclose(fitted[learning.PREFLIGHT]["gaps"], [1.0, -2.0], atol=1e-9)


def test_a_study_says_where_its_members_start_a_warm_up_or_a_fresh_model():
    sizes = {"warmup_steps": 600}
    assert learning.start_text({"preset": "cpu", "env": {"rounds": 16}, "sizes": sizes}) == (
        "from the seed's 600-step CE warm-up")
    scratch = learning.start_text({"preset": "cpu", "env": {"start": "scratch"}, "sizes": sizes})
    assert "scratch" in scratch and "warm-up" in scratch and "600" not in scratch  # "no warm-up", not its size


def test_a_side_study_plots_the_per_op_learners_levels_under_its_tag_and_only_where_it_ran(tmp_path):
    run = [{"levels": [[1] * len(OPS), [3] * len(OPS)], "sampler": ["uniform"] * 2}] * 3  # 3 rounds, 2 members
    assert learning.per_op_learner({"schedules": {"ppo": [run], "ppo_families": [run]}}) == "ppo_families"
    assert learning.per_op_learner({"schedules": {"ppo_families": [run], "ppo_levels": [run]}}) == "ppo_levels"
    assert learning.per_op_learner({"schedules": {"ppo": [run], "strength+2": [run]}}) is None
    learning.plot_levels([run, run], tmp_path, "t", "ppo_families")
    assert [p.name for p in tmp_path.iterdir()] == ["learning_t_levels.png"]
    learning.plot_levels(None, tmp_path, "u", "ppo_levels")  # the learner did not run: no figure
    assert not (tmp_path / "learning_u_levels.png").exists()


def test_ppo_families_is_held_against_its_frozen_prior_and_the_prior_counts_as_non_learning():
    methods = {"ppo_families": scores(0.50, 0.47), "prior_families": scores(0.48, 0.46),
               "strength+2": scores(0.49, 0.49)}
    c = learning.comparisons(methods)
    assert c["best_non_learning"] == "strength+2"
    np.testing.assert_allclose(c["ppo_families_vs_best_non_learning"]["gaps"], [1.0, -2.0], atol=1e-9)
    np.testing.assert_allclose(c["ppo_families_vs_prior_families"]["gaps"], [2.0, 1.0], atol=1e-9)


def test_ppo_flat_is_paired_with_ppo_and_its_uniform_control_is_a_non_learning_contender():
    methods = {"ppo": scores(0.50, 0.44), "ppo_flat": scores(0.49, 0.47), "prior_flat": scores(0.48, 0.46),
               "strength+1": scores(0.47, 0.45)}
    c = learning.comparisons(methods)
    assert c["best_non_learning"] == "prior_flat"  # the frozen flat prior counts among the non-learning methods
    np.testing.assert_allclose(c["ppo_flat_vs_ppo"]["gaps"], [-1.0, 3.0], atol=1e-9)
    np.testing.assert_allclose(c["ppo_flat_vs_prior_flat"]["gaps"], [1.0, 1.0], atol=1e-9)


def test_the_replayed_schedule_is_ppos_control_not_a_non_learning_contender():
    methods = {"ppo": scores(0.50, 0.44), learning.REPLAY: scores(0.55, 0.40), "prior": scores(0.46, 0.43)}
    c = learning.comparisons(methods)
    assert c["best_non_learning"] == "prior"  # the replay learned on other seeds: not a non-learning method
    np.testing.assert_allclose(c[f"ppo_vs_{learning.REPLAY}"]["gaps"], [-5.0, 4.0], atol=1e-9)
    np.testing.assert_allclose(c[f"{learning.REPLAY}_vs_prior"]["gaps"], [9.0, -3.0], atol=1e-9)
    assert "`ppo` vs `ppo_replay` (its schedule replayed, no learning): -0.50 [" in learning.replay_note(
        {"comparisons": c})
    assert learning.unrun_note(methods) == " (best of the methods run here; not run: pbt, best_fixed, " \
        "trivialaugment, randaugment, none)"


def test_reruns_on_another_cpu_are_listed_per_shared_seed(tmp_path):
    def study(cpu, seeds, ppo):
        return {"preset": "cpu", "env": {"rounds": 8}, "seeds": seeds, "machine": {"cpu": cpu},
                "methods": {"ppo": {"test_mean_f1": ppo}}}
    (tmp_path / "learning_old.json").write_text(json.dumps(study("CPU A", [7, 8], [0.50, 0.52])))
    (tmp_path / "learning_same.json").write_text(json.dumps(study("CPU B", [8], [0.40])))  # same CPU: not listed
    text = learning.other_cpu_reruns(tmp_path, study("CPU B", [8, 9], [0.5125, 0.6]))
    assert text.endswith("- `ppo` vs learning_old.json (on CPU A), per shared seed: -0.75\n")
    assert "learning_same" not in text and learning.other_cpu_reruns(tmp_path, study("CPU A", [9], [0.5])) == ""


def test_reward_signal_separates_the_recipes_gap_from_the_noise_within_a_pair():
    def seed(signal: float, spread: float) -> list[list[float]]:
        # members: prior, prior, oracle, oracle; each pair's members differ by +-spread around their mean
        return [[-signal / 2 + s * spread / 2, -signal / 2 - s * spread / 2, signal / 2 - s * spread / 2,
                 signal / 2 + s * spread / 2] for s in (1, -1, 1, -1, 1, -1, 1, -1)]

    a = reward_signal.analyse([seed(2.0, 3.0), seed(2.5, 3.0), seed(1.5, 3.0)])
    np.testing.assert_allclose(a["signal_per_seed"], [2.0, 2.5, 1.5])
    half = runs.T975[2] * 0.5 / math.sqrt(3)
    np.testing.assert_allclose(a["signal_ci95"], [2.0 - half, 2.0 + half])
    assert a["sigma"] == pytest.approx(3.0 / math.sqrt(2))  # a pair's members differ by 3: one member's std
    # one oracle member minus one prior member: the four pairings deviate by -3, 0, 0 and +3 from the signal
    assert a["comparison_sd"] == pytest.approx(3.0 / math.sqrt(2))
    assert a["comparisons_needed"] == pytest.approx(4.5)  # (2 * comparison_sd / signal) ** 2
    assert a["comparisons_per_run"] == 16
    # the pairs' spread alternates in sign round by round, so it cancels in the final levels; the signal adds up
    np.testing.assert_allclose(a["level_gap_per_seed"], [16.0, 20.0, 12.0])
    assert a["level_sigma"] == pytest.approx(0.0)
    assert reward_signal.analyse([seed(-1.0, 3.0)])["comparisons_needed"] is None  # no gain: never told apart


def test_strength_bandit_rewards_are_each_offsets_mean_centred_within_the_round():
    means = [0.0, 1.0, 2.0, 3.0, 4.0]
    bandit = strength_bandit.StrengthBandit(means, rounds=2, sigma=0.0)
    menu = menu_actions(STRENGTH_MENU)
    bandit.reset()
    _, rewards, dones, _ = bandit.step(np.stack([menu[k] for k in (0, 1, 4, 4)]))
    np.testing.assert_allclose(rewards, np.array([0.0, 1.0, 4.0, 4.0]) - 2.25)  # the mean of 0, 1, 4, 4
    assert not dones.any()
    _, _, dones, infos = bandit.step(np.stack([menu[2]] * 4))
    assert dones.all() and "terminal_observation" in infos[0] and bandit.round == 0
    np.testing.assert_array_equal(np.array(bandit.chosen), [[0, 1, 4, 4], [2, 2, 2, 2]])
    noisy = strength_bandit.StrengthBandit(means, members=400, sigma=1.0)
    noisy.reset()
    _, rewards, _, _ = noisy.step(np.stack([menu[2]] * 400))  # one offset for all: only the noise remains
    assert abs(rewards.sum()) < 1e-3 and 0.85 < rewards.std() < 1.15


def test_strength_bandit_reports_each_learners_late_value_with_its_interval(tmp_path):
    data = strength_bandit.measure(3)
    for scenario, means in strength_bandit.SCENARIOS.items():
        for learner in strength_bandit.LEARNERS:
            row = data["results"][scenario][learner]
            assert len(row["offset_per_round"]) == strength_bandit.ROUNDS and len(row["late_value_per_run"]) == 3
            values = row["value_per_round"]  # a mean over members and runs of the chosen offsets' means
            assert min(means) - 1e-9 <= min(values) and max(values) <= max(means) + 1e-9
    text = strength_bandit.report(data)
    assert "| +2 best (-0.8, -0.4, +0.0, +0.4, +0.8) | +0.80 |" in text and text.count("[") >= 6
    strength_bandit.plot(data, tmp_path)
    assert (tmp_path / "strength_bandit.png").stat().st_size > 0


def test_carry_bandit_rewards_are_linear_in_the_levels_and_centred_within_the_round():
    effects = np.linspace(-0.5, 0.5, len(OPS))
    bandit = carry_bandit.LevelsBandit(effects, members=3, rounds=2, sigma=0.0)
    bandit.reset()
    levels = np.array([[0] * len(OPS), [4] * len(OPS), list(range(len(OPS) // 4)) * 4])
    actions = np.hstack([levels % 5, np.zeros((3, 1), dtype=int)])
    _, rewards, _, _ = bandit.step(actions)
    raw = (levels % 5) @ effects
    np.testing.assert_allclose(rewards, raw - raw.mean(), atol=1e-5)
    assert carry_bandit.value(carry_bandit.BASE, effects) == 0  # strength+2 is the value's zero


def test_the_fit_reaches_the_best_recipe_where_effects_are_clear_and_ppo_moves_towards_it():
    effects = np.zeros(len(OPS))
    effects[OPS.index("erase")], effects[OPS.index("hue")] = -3.0, 3.0  # far above the noise
    best = carry_bandit.oracle(effects)
    assert best == pytest.approx(3.0 * 3 + 3.0 * 1)  # erase 3 -> 0, hue 3 -> 4 (strength+2's levels)
    assert carry_bandit.fitted_value(effects, runs=1, seed=0) == pytest.approx(best)  # null ops' chance edits: 0
    after, last = carry_bandit.ppo_values(effects, runs=1, seed=0)
    # it learns the direction within a run, not the whole way (its last run: one noisy sample of 64 draws)
    assert 0.5 < after < best / 2 and last < best / 2


def test_carry_bandit_reports_every_learner_for_every_chain_length(tmp_path):
    data = carry_bandit.measure(2, chains=(1,))
    text = carry_bandit.report(data)
    assert f"(the best recipe: {data['oracle']:+.2f};" in text and "| learner | 1 runs |" in text
    for name in ("fitted", "ppo: policy after the chain", "ppo, looser: its last run"):
        assert text.count(f"| {name} | ") == 1 and len(data["results"]["1"][name]) == 2
    carry_bandit.plot(data, tmp_path)
    assert (tmp_path / "carry_bandit.png").stat().st_size > 0


def test_update_bandit_plays_each_learner_from_fitted_prior_and_the_often_updated_one_moves_further():
    means = [-1.0, -1.0, 0.0, 1.0, 0.0]  # one step below the recipe is best, by a point a round
    chosen = {learner: np.stack([update_bandit.play(learner, means, seed) for seed in range(3)])
              for learner in update_bandit.LEARNERS}
    assert all(c.shape == (3, update_bandit.ROUNDS, update_bandit.MEMBERS) for c in chosen.values())
    plus_one = {learner: (c[:, -6:] == STRENGTHS.index(1)).mean() for learner, c in chosen.items()}
    assert plus_one["ppo_fitted_often"] > plus_one["ppo_fitted"] > 0.3  # both learn; the prior draws +1 17% of the time
    data = {"members": 4, "rounds": 24, "sigma": 0.95, "runs": 2, "scenarios": {"s": means}, "results": {"s": {
        learner: {"offset_per_round": [1.0] * 24, "late_value_per_run": [0.5, 0.7], "late_offset_per_run": [1.0, 1.2]}
        for learner in update_bandit.LEARNERS}}}
    assert "| s (-1.00, -1.00, +0.00, +1.00, +0.00) | +1.00 | +0.60 [-0.67, +1.87]; offset +1.10 |" in \
        update_bandit.report(data)


def test_context_bandit_shows_members_their_last_action_and_only_the_policy_that_reads_it_locks_them_together():
    bandit = context_bandit.LastActionBandit([0.0] * len(STRENGTHS), members=3, rounds=2, seed=0)
    first = bandit.reset()
    assert first.shape == (3, 18) and not first.any()
    actions = np.stack(menu_actions(STRENGTH_MENU))[[0, 2, 4]]  # offsets -2, 0, +2
    second, *_ = bandit.step(actions)
    np.testing.assert_allclose(second[:, 0], 0.5)  # the progress, as before
    np.testing.assert_allclose(second[:, 1:-1], actions[:, :-1] / MAX_LEVEL)  # each member's own levels
    no_effect = [0.0] * len(STRENGTHS)
    one = {learner: np.mean([(c[-6:] == c[-6:, :1]).all(axis=1).mean()
                             for c in (context_bandit.play(learner, no_effect, seed) for seed in range(3))])
           for learner in context_bandit.LEARNERS}
    assert one["ppo_fitted_often"] > one["ppo_fitted_bandit"] + 0.2  # with nothing to find, it locks the members
    data = {"members": 4, "rounds": 24, "sigma": 0.95, "runs": 2, "scenarios": {"s": no_effect}, "results": {"s": {
        learner: {"offset_per_round": [1.0] * 24, "late_value_per_run": [0.0, 0.0], "late_offset_per_run": [1.0, 1.2],
                  "late_one_offset_per_run": [0.5, 1.0]} for learner in context_bandit.LEARNERS}}}
    assert "+0.00 [+0.00, +0.00]; offset +1.10; one offset 0.75 |" in context_bandit.report(data)


def test_a_side_study_reports_how_far_each_family_moved_from_the_first_four_rounds_to_the_last_four():
    from agents.population import family_action

    start, down = family_action([4, 4, 4, 4]).tolist(), family_action([4, 4, 4, 0]).tolist()  # erase 3 -> 0
    run = [{"levels": [start, start]}] * 4 + [{"levels": [start, down]}] * 4  # 8 rounds, 2 members
    data = {"schedules": {"ppo_families": [run, run], "strength+2": [run]}}
    text = learning.family_moves(data)
    assert text.startswith("- `ppo_families`, each family's levels") and "prior_families" not in text
    assert "geometric +0.00 -> +0.00 (moved +0.00 [+0.00, +0.00])" in text
    assert "occlusion +0.00 -> -1.50 (moved -1.50 [-1.50, -1.50])" in text  # one member of two at erase 0
    assert learning.family_moves({"schedules": {"ppo": [run]}}) == ""


def test_family_bandit_rewards_each_familys_level_change_by_its_slope_centred_within_the_round():
    from agents.population import FAMILIES, FAMILY_START, STRENGTHS, family_action, family_changes

    start = STRENGTHS.index(FAMILY_START)
    assert np.allclose(family_changes(family_action([start] * 4)[:len(OPS)]), 0)
    # geometric -2 offsets from the start: rotate, scale and shifts 4 -> 0, shear 3 -> 0: a mean change of -3.8
    geometric_down = family_action([0, start, start, start])[:len(OPS)]
    np.testing.assert_allclose(family_changes(geometric_down), [-3.8, 0, 0, 0])
    bandit = family_bandit.FamilyBandit({"geometric": -0.5}, rounds=2, sigma=0.0)
    bandit.reset()
    actions = np.stack([family_action([0, start, start, start])] + [family_action([start] * 4)] * 3)
    _, rewards, dones, _ = bandit.step(actions)
    np.testing.assert_allclose(rewards, np.array([1.9, 0, 0, 0]) - 1.9 / 4, rtol=1e-6)  # -0.5 x -3.8, centred
    assert not dones.any() and list(FAMILIES)[0] == "geometric"


def test_family_bandit_reports_each_familys_move_with_its_interval(tmp_path):
    data = family_bandit.measure(2)
    for row in data["results"].values():
        changes = np.array(row["change_per_round"])
        assert changes.shape == (family_bandit.ROUNDS, 4) and len(row["moved_per_run"]) == 2
        assert (changes <= 0.5 + 1e-9).all()  # from the start at +2, a family can rise by at most half a level
    text = family_bandit.report(data)
    assert "| occlusion down, 0.4 |" in text
    assert text.count(" [") == 4 * len(family_bandit.SCENARIOS) + 1  # an interval per family and scenario; "[95% CI]"
    family_bandit.plot(data, tmp_path)
    assert (tmp_path / "family_bandit.png").stat().st_size > 0


@pytest.mark.parametrize("runs", ["1", "0", "-3"])
@pytest.mark.parametrize("study", [strength_bandit, family_bandit], ids=["strength", "family"])
def test_each_bandit_check_refuses_too_few_runs_in_one_line_before_writing(study, runs, tmp_path, monkeypatch,
                                                                           capsys):
    from adaptive_de.errors import run_cli
    monkeypatch.chdir(tmp_path)
    assert run_cli(study.main, ["--runs", runs]) == 2
    message = f"error: --runs must be at least 2 (the 95% interval needs two runs), not {runs}\n"
    assert capsys.readouterr().err == message
    assert not list(tmp_path.rglob("*"))


def test_default_run_report_meets_the_target_only_within_15_minutes():
    data = {"machine": {"cpu": "CPU X", "cores": 2, "load_average_1min": 0.1}, "command": "run --agent ppo",
            "target_minutes": 15, "wall_seconds": 14.5 * 60,
            "methods": {"ppo": {"test_mean_f1": 0.3141, "compute_inner_steps": 480, "wall_seconds": 180.2}}}
    text = default_run.report(data)
    assert "Wall time **14.5 min** (target <= 15 min): **met**" in text and "| ppo | 31.41 | 480 | 180 |" in text
    data["wall_seconds"] = 15.2 * 60
    assert "**15.2 min** (target <= 15 min): **NOT met**" in default_run.report(data)


def test_report_says_met_only_when_the_interval_is_above_zero():
    machine = {"cuda_device": None, "cpu": "CPU X", "cores": 2}
    sizes = {"members": 4, "rounds": 8, "steps_per_round": 36, "exploit_every": 2, "warmup_steps": 600,
             "reward_subset": 200}
    methods = {"ppo": scores(0.52, 0.46, 0.50), "prior": scores(0.50, 0.45, 0.49),
               "best_fixed": scores(0.505, 0.445, 0.485)}
    data = {"machine": machine, "preset": "cpu", "env": {}, "seeds": [0, 1, 2], "sizes": sizes, "wall_seconds": 600,
            "methods": methods, "comparisons": learning.comparisons(methods), "schedules": {}}
    text = learning.report(data)
    assert "`ppo` vs the best non-learning method `prior`" in text and text.count("NOT met") == 2
    assert "Pre-flight" in text and "not measured" in text  # no oracle in this study
    methods["ppo"] = scores(0.53, 0.475, 0.515)  # +3.0, +2.5, +2.5 over prior
    data["comparisons"] = learning.comparisons(methods)
    assert learning.report(data).count(": met") == 2
    assert "Study time" not in learning.report(data)  # a study that did not record its workers
    data.update(jobs=2, run_seconds=246 * 60, resumed=True)  # reused runs: their load is unknown
    assert "resumed from stored runs (246 worker-minutes" in learning.report(data)
    assert learning.report(data).count("NOT met") == 0
    data.update(resumed=False, wall_seconds=101 * 60)  # a study run from scratch: its own wall time counts
    assert "3 methods x 3 seeds, warm-ups included, took **101 min** on 2 workers (measured): **NOT met**" in \
        learning.report(data)
    data["wall_seconds"] = 99 * 60
    assert "took **99 min** on 2 workers (measured): **met**" in learning.report(data)
    data["merged_from"] = {"docs/learning_side.json": ["best_fixed"]}  # a merged method ran in its own study
    assert "2 methods x 3 seeds" in learning.report(data)


def test_gpu_report_formats_the_files_and_names_what_did_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_report, "DOCS", tmp_path)
    assert gpu_report.report().count("not run") == 3
    machine = {"torch": "2.x", "cores": 16}
    training = {"device": "Card X", "preset": "vit-p12s8", "batch": 256, "image_size": 112, "dtype": "bf16 autocast",
                "images_per_s": 2000.0, "achieved_tflops": 200.0, "peak_tflops": 1000.0, "mfu": 0.2,
                "max_memory_gib": 20.0}
    (tmp_path / "bench_model_cuda.json").write_text(json.dumps({"machine": machine, "cuda_training": training}))
    (tmp_path / "gpu_check_run.json").write_text(json.dumps({"methods": {"ppo": {"test_mean_f1": 0.6454}}}))
    text = gpu_report.report()
    assert "**Card X**" in text and "MFU 20.0%" in text and "`ppo` 64.54" in text
    assert text.count("not run") == 1  # only the augmentation benchmark is missing


@pytest.mark.parametrize("module", [learning, gpu_report, train_speed, strength_bandit])
def test_study_modules_document_their_command(module):
    assert f"python -m {module.__name__}" in module.__doc__


@pytest.mark.parametrize("argv, message", [(["--env", "foo=1"], "unknown env option(s): foo"),
                                           (["--preset", "nope"], "unknown preset 'nope'"),
                                           (["--env", "members=1"], "a population needs at least 2 members"),
                                           (["--seeds", "1", "1"], "--seeds repeats a seed")])
def test_learning_study_refuses_bad_options_in_one_line(argv, message, capsys):
    from adaptive_de.errors import run_cli
    assert run_cli(learning.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def study_data(tmp_path):
    machine = {"cuda_device": None, "cpu": "CPU X", "cores": 2}
    sizes = {"members": 2, "rounds": 2, "steps_per_round": 4, "exploit_every": 1, "warmup_steps": 20,
             "reward_subset": 16}
    methods = {"ppo": scores(0.52, 0.46, 0.50), "best_fixed": scores(0.50, 0.45, 0.49), "oracle": scores(.6, .5, .55)}
    levels = {"levels": [[1] * 16, [2] * 16], "sampler": ["uniform", "uniform"]}
    data = {"machine": machine, "preset": "smoke", "env": {}, "seeds": [0, 1, 2], "sizes": sizes, "wall_seconds": 60,
            "methods": methods, "comparisons": learning.comparisons(methods),
            "schedules": {"ppo": [[levels, levels]] * 3}}
    (tmp_path / "learning.json").write_text(json.dumps(data))
    return data


def test_noise_floor_states_the_resolvable_gap_and_the_thread_check(tmp_path):
    data = study_data(tmp_path)
    gap = data["comparisons"]["ppo_vs_best_non_learning"]  # +2.0, +1.0, +1.0
    half = runs.T975[2] * np.std(gap["gaps"], ddof=1) / math.sqrt(3)
    noise = {"method": "prior", "seed": 0, "difference_points": 0.0}
    text = learning.report(data, noise)
    assert f"half-width is {half:.2f} points" in text and "at 2 torch threads instead of 1 differs by +0.000" in text


def test_the_main_report_lists_the_ppo_verdicts_of_side_studies_of_the_same_sizes(tmp_path):
    data = study_data(tmp_path)
    methods = {"ppo": scores(0.50, 0.45, 0.49), "best_fixed": scores(0.52, 0.46, 0.50)}  # ppo behind on new seeds
    side = {**data, "seeds": [3, 4, 5], "methods": methods, "comparisons": learning.comparisons(methods)}
    (tmp_path / "learning_newseeds.json").write_text(json.dumps(side))
    (tmp_path / "learning_other.json").write_text(json.dumps({**side, "env": {"rounds": 4}}))  # other sizes
    (tmp_path / "learning_noise.json").write_text(json.dumps({"method": "prior", "difference_points": 0.1}))
    sides = learning.side_studies(tmp_path, data)
    assert [tag for tag, _ in sides] == ["newseeds"]
    text = learning.report(data, None, sides)
    assert "- Side study `newseeds` (seeds [3, 4, 5], methods ppo, best_fixed): `ppo` vs the best non-learning " \
           "method `best_fixed`: **-1.33 [" in text and "`other`" not in text


def test_report_flag_rerenders_without_training(tmp_path, capsys):
    study_data(tmp_path)
    learning.main(["--report", "--out", str(tmp_path)])
    assert (tmp_path / "learning_methods.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "learning_levels.png").exists() and "| ppo |" in capsys.readouterr().out
    from adaptive_de.errors import run_cli
    assert run_cli(learning.main, ["--report", "--out", str(tmp_path / "empty")]) == 2
    side = tmp_path / "side"
    side.mkdir()
    data = json.loads((tmp_path / "learning.json").read_text())
    data["methods"]["none"] = data["methods"].pop("ppo")
    (side / "learning_more.json").write_text(json.dumps(data))
    assert "ppo_vs_best_non_learning" in data["comparisons"]  # stale once ppo is gone
    learning.main(["--report", "--out", str(side), "--tag", "more"])  # a side study: its own file, no plots
    assert "| none |" in capsys.readouterr().out and not list(side.glob("*.png"))
    refreshed = json.loads((side / "learning_more.json").read_text())  # comparisons recomputed from the scores
    assert refreshed["comparisons"] == json.loads(json.dumps(learning.comparisons(data["methods"])))
    assert "ppo_vs_best_non_learning" not in refreshed["comparisons"]


def test_rewards_study_targets_need_the_interval_or_the_fp_cut():
    def arm(f1, fp, val=None):
        return {"test_mean_f1": f1, "val_mean_f1": val or f1, "test_fp_rate": fp}

    control = arm([0.40, 0.50, 0.45], [0.10] * 3)
    arms = {rewards_study.CONTROL: control, "ce": control,
            "steady": arm([0.415, 0.515, 0.465], [0.10] * 3),  # +1.5 on every seed
            "noisy": arm([0.45, 0.49, 0.46], [0.10] * 3, val=[0.9] * 3),  # +1.67 on average, interval spans 0
            "clean": arm([0.398, 0.497, 0.448], [0.084] * 3)}  # -0.23 points, 16% fewer false positives
    c = rewards_study.comparisons(arms)["per_arm"]
    assert set(c) == {"steady", "noisy", "clean"}
    assert c["steady"]["f1_target_met"] and not c["steady"]["fp_target_met"]
    assert not c["noisy"]["f1_target_met"] and c["noisy"]["test_mean_f1_gap"]["ci95"][0] < 0
    assert c["clean"]["fp_target_met"] and c["clean"]["test_fp_rate_change"] == pytest.approx(-0.16)
    assert rewards_study.comparisons(arms)["best_by_val"] == "noisy"  # chosen on val, not test


@pytest.mark.slow
def test_train_speed_runs_two_versions_side_by_side():
    """Against the last commit: two processes, each importing its own package, give the same first losses."""
    import shutil
    import subprocess

    if shutil.which("git") is None or subprocess.run(["git", "-C", str(train_speed.ROOT), "rev-parse", "HEAD"],
                                                     capture_output=True).returncode:
        pytest.skip("needs the git history")
    result = train_speed.compare("HEAD", **train_speed.QUICK)
    first = result["first_losses"]
    assert first["baseline"][0] == first["current"][0]  # before any update: the same model on the same batch
    assert result["losses_agree"]
    assert result["packages"]["current"] == str(train_speed.ROOT / "adaptive_de")
    assert result["packages"]["baseline"] != result["packages"]["current"]
    assert all(v > 0 for v in result["images_per_s"].values())
    assert len(result["per_block_ratio"]) == train_speed.QUICK["blocks"]
    text = train_speed.report({**result, "step_profile": {"attention": 0.4, "other": 0.6}})
    assert "train_round_speedup_cpu" in text and "| attention | 40.0% |" in text


def test_side_run_report_pairs_pbt_tune_with_pbt():
    methods = {name: {"test_mean_f1": f1, "test_fp_rate": [0.1] * 3, "compute_inner_steps": 96}
               for name, f1 in (("pbt", [0.40, 0.50, 0.60]), ("pbt_tune", [0.41, 0.49, 0.62]))}
    data = {"sizes": {"members": 4, "rounds": 8, "steps_per_round": 36, "exploit_every": 2, "warmup_steps": 600},
            "machine": {"cpu": "x", "cores": 2}, "wall_seconds": 600, "seeds": [0, 1, 2], "methods": methods,
            "comparisons": learning.comparisons(methods), "preset": "cpu", "env": {"rounds": 8}, "schedules": {}}
    gap = data["comparisons"]["pbt_tune_vs_pbt"]
    assert gap["gaps"] == pytest.approx([1.0, -1.0, 2.0]) and gap["mean"] == pytest.approx(2 / 3)
    text = learning.side_report(data, "pbt_tune")
    assert "`pbt_tune_vs_pbt`: +0.67" in text and "learning_pbt_tune.json" in text
    assert "env options `rounds=8`." in text and "strength offset" not in text  # no ppo ran: no schedule


def test_a_study_lists_and_plots_the_strength_schedules_ppo_found_and_replayed(tmp_path):
    offsets = {"ppo": [[[0, 0], [1, 2]], [[-1, 0], [2, 2]]], learning.REPLAY: [[[-2, -2], [0, 1]]]}
    menu = dict(zip(STRENGTHS, (levels for levels, _ in STRENGTH_MENU.values()), strict=True))
    schedules = {m: [[{"levels": [[menu[o][op] for op in OPS] for o in members]} for members in run] for run in runs]
                 for m, runs in offsets.items()}
    text = learning.strength_schedules(learning.strength_means({"schedules": {**schedules, "prior": []}}))
    # per round, the mean over runs and members: ppo (0+0-1+0)/4 and (1+2+2+2)/4; the replay -2 and 0.5
    assert text == ("- `ppo`'s mean strength offset per round: -0.25, +1.75\n"
                    "- `ppo_replay`'s mean strength offset per round: -2.00, +0.50\n")
    # one row per seed, then their mean: ppo's first run took (0, 0) then (1, 2), its second (-1, 0) then (2, 2)
    np.testing.assert_allclose(learning.strength_means({"schedules": schedules})["ppo"],
                               [[0.0, 1.5], [-0.5, 2.0], [-0.25, 1.75]])
    methods = {m: {"test_mean_f1": [0.5, 0.6]} for m in ("ppo", learning.REPLAY, "prior", "strength+1", "strength-2")}
    assert learning.held_strengths(methods) == {"strength+1": 1, "strength-2": -2}
    learning.plot_strengths({"schedules": schedules, "methods": methods, "env": {"data": "synth:shift=0"}}, tmp_path,
                            "side")
    assert (tmp_path / "learning_side_strengths.png").read_bytes()[:4] == b"\x89PNG"


def test_a_resumed_study_reads_finished_runs_and_a_fresh_one_forgets_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"rounds": 2}
    store = learning.run_store("smoke", env, resume=False)
    stored = {"method": "none", "seed": 3, "row": {"test_mean_f1": 0.123}}
    (store / "none-seed3.json").write_text(json.dumps(stored))
    # a stored run comes back as it was written, without training (the smoke preset would not score 0.123)
    assert learning.method_task("smoke", env, "none", 3, store) == stored
    assert learning.run_store("smoke", env, resume=True) == store and (store / "none-seed3.json").exists()
    assert not (learning.run_store("smoke", env, resume=False) / "none-seed3.json").exists()
    assert learning.run_store("smoke", {"rounds": 3}, resume=True) != store  # other sizes, other runs


def test_a_side_study_merges_only_when_the_methods_both_ran_agree_bit_for_bit(tmp_path):
    def study(methods):
        return {"preset": "cpu", "env": {"rounds": 8}, "seeds": [0, 1], "schedules": {m: [] for m in methods},
                "methods": {m: {"test_mean_f1": list(v), "test_fp_rate": [0.1, 0.1], "compute_inner_steps": 8}
                            for m, v in methods.items()}}
    path = tmp_path / "learning_side.json"
    path.write_text(json.dumps(study({"pbt": (0.5, 0.6), "pbt_tune": (0.4, 0.7)})))
    design = ("cpu", {"rounds": 8}, [0, 1])
    methods, schedules = study({"ppo": (0.3, 0.3), "pbt": (0.5, 0.6)})["methods"], {}
    assert learning.merge_side_study(methods, schedules, path, design) == ["pbt_tune"]
    assert methods["pbt_tune"]["test_mean_f1"] == [0.4, 0.7] and "pbt_tune" in schedules
    with pytest.raises(UserError, match="pbt scored"):  # one seed differs: not the same runs
        learning.merge_side_study(study({"pbt": (0.5, 0.61)})["methods"], {}, path, design)
    path.write_text(json.dumps({**study({"pbt": (0.5, 0.6)}), "machine": {"cpu": "another CPU"}}))
    with pytest.raises(UserError, match=r"there on another CPU, here on .*: their kernels round differently"):
        learning.merge_side_study(study({"pbt": (0.5, 0.61)})["methods"], {}, path, design)
    with pytest.raises(UserError, match="shares no method"):
        learning.merge_side_study(study({"ppo": (0.5, 0.6)})["methods"], {}, path, design)
    with pytest.raises(UserError, match="ran preset cpu"):
        learning.merge_side_study(study({"pbt": (0.5, 0.6)})["methods"], {}, path, ("cpu", {"rounds": 9}, [0, 1]))


def test_map_runs_keeps_task_order_in_workers_counts_runs_and_raises_a_failed_task(capsys):
    tasks = [(2.0, k) for k in range(5)]
    assert runs.map_runs(math.pow, tasks, jobs=2) == [2.0 ** k for k in range(5)]
    assert "pow: 100%" in capsys.readouterr().err  # the bar counted every task
    with pytest.raises(TypeError):
        runs.map_runs(math.pow, [(2.0, 1), ("two", 1)], jobs=2)


def test_a_side_study_of_a_learner_states_its_targets_with_verdicts():
    f1 = {"ppo": [0.52, 0.53, 0.55], "prior": [0.50, 0.51, 0.54], "randaugment": [0.515, 0.52, 0.535],
          "none": [0.40, 0.41, 0.43]}
    methods = {name: {"test_mean_f1": v, "test_fp_rate": [0.1] * 3, "compute_inner_steps": 96}
               for name, v in f1.items()}
    data = {"sizes": {"members": 4, "rounds": 8, "steps_per_round": 36, "exploit_every": 2, "warmup_steps": 600},
            "machine": {"cpu": "x", "cores": 2}, "wall_seconds": 600, "seeds": [0, 1, 2], "methods": methods,
            "comparisons": learning.comparisons(methods), "preset": "cpu", "env": {"rounds": 8}, "schedules": {}}
    text = learning.side_report(data, "confirmation")
    # the best non-learning method is randaugment (52.3 > prior's 51.7): ppo leads it by +1.00 with an interval
    # reaching below 0 (NOT met), and prior by +1.67 [+0.23, +3.10] (met)
    assert "method `randaugment` (target >= +1, interval above 0): **+1.00 [-0.24" in text
    assert text.count("NOT met") == 1 and "`ppo` vs its frozen prior `prior`" in text
    assert "Pre-flight" not in text and "`ppo_vs_prior`" not in text  # no oracle ran; no gap listed twice
    # the one non-learning method the targets do not name gets its own paired gap: +12, +12, +12 points
    assert "- `ppo` vs `none`: +12.00 [+12.00, +12.00] (per seed: +12.00, +12.00, +12.00) points\n" in text
    assert "`ppo` vs `randaugment`:" not in text and "`ppo` vs `prior`:" not in text


def test_the_report_names_the_grid_candidate_best_fixeds_final_member_trained():
    geo, all2 = GRID["geo+photo"][:len(OPS)], GRID["all-2"][:len(OPS)]
    # per seed, one round of 2 members; the final member is member 1 on seeds 5 and 7, member 0 on seed 6
    rounds = [[{"levels": [all2, geo]}], [{"levels": [all2, geo]}], [{"levels": [[1] * len(OPS), geo]}]]
    data = {"seeds": [5, 6, 7], "schedules": {"best_fixed": rounds},
            "methods": {"best_fixed": {"best_member": [1, 0, 0]}}}
    assert learning.grid_choices(data) == ("- `best_fixed`'s final model trained `geo+photo` on seed 5; `all-2` on "
                                           "seed 6; `all-1` on seed 7\n"
                                           "- `best_fixed`'s share of members per round: `geometric` 0.00; "
                                           "`photometric` 0.00; `geo+photo` 0.50; `all-2` 0.33\n")
    data["schedules"]["best_fixed"][2][0]["levels"][0] = [4] * len(OPS)  # no grid candidate
    assert "`another recipe` on seed 7" in learning.grid_choices(data)
    assert learning.grid_choices({"seeds": [5], "schedules": {}, "methods": {}}) == ""  # best_fixed did not run
    # a learner over the grid likewise; the shares pool every seed's members, round by round
    geometric = GRID["geometric"][:len(OPS)]
    learner = [[{"levels": [geometric, all2]}, {"levels": [geo, geo]}],
               [{"levels": [geo, all2]}, {"levels": [geo, all2]}]]
    data = {"seeds": [5, 6], "schedules": {"ppo_grid": learner}, "methods": {"ppo_grid": {"best_member": [0, 1]}}}
    assert learning.grid_choices(data) == (
        "- `ppo_grid`'s final model trained `geo+photo` on seed 5; `all-2` on seed 6\n"
        "- `ppo_grid`'s share of members per round: `geometric` 0.25, 0.00; `photometric` 0.00, 0.00; "
        "`geo+photo` 0.25, 0.75; `all-2` 0.50, 0.25\n")


def test_a_probe_study_reports_each_ops_effect_and_the_recipe_fitted_trains(tmp_path):
    from test_fitted import NOISE, SHEAR

    from tests.conftest import probe_runs

    effects = np.zeros(len(OPS))
    effects[NOISE], effects[SHEAR] = 0.6, -0.6
    data = {"schedules": {"probe": probe_runs(effects, runs=3, sigma=0.3)}}
    text = learning.probe_fit(data)
    assert "from 192 member-rounds of 3 runs: rotate " in text
    fitted = {op: float(v) for op, v in re.findall(r"(\w+) ([+-]\d\.\d{3}) ± \d\.\d{3}", text)}
    assert list(fitted) == list(OPS) and fitted["noise"] == pytest.approx(0.6, abs=0.1)
    assert fitted["shear"] == pytest.approx(-0.6, abs=0.1)
    # strength+2 has noise 3, shear 3; the oracle has noise 4, shear 0: both edits point its way
    assert "noise 3 -> 4" in text and "shear 3 -> 0" in text and "in the direction of the oracle's level" in text
    learning.plot_effects(data, tmp_path, "probe_test")
    assert (tmp_path / "learning_probe_test_effects.png").stat().st_size > 0
    few = {"schedules": {"probe": [data["schedules"]["probe"][0][:2]]}}  # a smoke check's two rounds
    assert learning.probe_fit(few) == "- `probe`: 8 member-rounds, too few to fit 16 op effects\n"
    assert learning.probe_fit({"schedules": {"ppo": []}}) == ""


def test_fitted_is_held_against_the_recipe_its_edits_start_from():
    c = learning.comparisons({"fitted": scores(0.5, 0.6, 0.7), "strength+2": scores(0.4, 0.5, 0.6)})
    assert c["best_non_learning"] == "strength+2"
    assert c["fitted_vs_strength+2"]["mean"] == pytest.approx(10.0)  # points


def test_a_gap_at_unequal_compute_says_so_beside_its_verdict():
    methods = {"fitted": {**scores(0.52, 0.63, 0.74), "compute_inner_steps": 11520},
               "strength+2": {**scores(0.40, 0.50, 0.60), "compute_inner_steps": 2304}}
    text = learning.targets({"methods": methods, "comparisons": learning.comparisons(methods)}, preflight=False)
    assert text.count("**at unequal compute** (11,520 inner steps against 2,304)") == 2
    assert "vs the recipe its edits start from `strength+2`" in text
    even = {name: {**m, "compute_inner_steps": 2304} for name, m in methods.items()}
    assert "unequal" not in learning.targets({"methods": even, "comparisons": learning.comparisons(even)}, False)


def test_a_learner_run_alone_is_not_compared_with_a_method_that_did_not_run():
    methods = {"fitted": {**scores(0.52, 0.63, 0.74), "compute_inner_steps": 11520}}
    text = learning.targets({"methods": methods, "comparisons": learning.comparisons(methods)}, preflight=False)
    assert "`fitted` vs the best non-learning method: not measured (none ran)" in text
    assert "`None`" not in text
    assert "vs the recipe its edits start from `strength+2` (target >= +1, interval above 0): not measured" in text


def size_study(tmp_path, tag, seeds, members, methods, env=None, cpu="CPU X"):
    """A side study file of 2 rounds x 4 steps at ``members`` members (a run's own steps: members x 8)."""
    data = {"machine": {"cuda_device": None, "cpu": cpu, "cores": 2}, "preset": "smoke",
            "env": {**(env or {}), "members": members}, "seeds": seeds, "wall_seconds": 60, "jobs": 2,
            "sizes": {"members": members, "rounds": 2, "steps_per_round": 4, "exploit_every": 1, "warmup_steps": 20,
                      "reward_subset": 16},
            "methods": methods, "comparisons": learning.comparisons(methods), "schedules": {}}
    (tmp_path / f"learning_{tag}.json").write_text(json.dumps(data))
    return data


def with_steps(values, steps):
    return {**scores(*values), "compute_inner_steps": steps}


def pairs(out, tag):
    """The RESULTS bullets of side study ``tag`` in ``out``, paired (``--pair-with``) with studies of another size."""
    data = json.loads((out / f"learning_{tag}.json").read_text())
    return learning.size_pairs(learning.size_arms(out, data), data, tag)


def test_an_arm_at_another_population_size_pairs_by_seed_and_judges_a_learner_only_at_equal_compute(tmp_path,
                                                                                                       capsys):
    # fitted at 2 members: its own 16 steps plus a 48-step search reused by its 3 runs, so 16 + 48 / 3 = 32 per run,
    # which a 4-member population (4 x 8) matches; its seeds come from two studies
    size_study(tmp_path, "a", [0, 1], 2, {"fitted": with_steps([0.52, 0.63], 64), "strength+2": with_steps(
        [0.45, 0.55], 16)})
    size_study(tmp_path, "b", [2], 2, {"fitted": with_steps([0.74], 64), "strength+2": with_steps([0.65], 16)})
    size_study(tmp_path, "eq", [0, 1, 2], 4, {"strength+2": with_steps([0.40, 0.50, 0.60], 32)})
    learning.main(["--report", "--tag", "eq", "--out", str(tmp_path), "--pair-with", "a", "b"])
    assert json.loads((tmp_path / "learning_eq.json").read_text())["paired_with"] == ["a", "b"]  # kept for re-renders
    assert (tmp_path / "learning_eq_pairs.png").read_bytes()[:4] == b"\x89PNG"
    text = pairs(tmp_path, "eq")
    lines = text.splitlines()
    fitted = next(line for line in lines if line.startswith("- `fitted` (2 members, a + b) - `strength+2` (4"))
    gaps = [100 * (x - y) for x, y in zip([0.52, 0.63, 0.74], [0.40, 0.50, 0.60], strict=True)]  # 12, 13, 14
    half = runs.T975[2] * np.std(gaps, ddof=1) / math.sqrt(3)
    assert f"**+13.00 [{13 - half:+.2f}, {13 + half:+.2f}] (per seed: +12.00, +13.00, +14.00)**: met" in fitted
    assert fitted.startswith("- `fitted` (2 members, a + b) - `strength+2` (4 members, here), inner steps per run 64 "
                             "(32 with its search shared over its 3 runs) against 32: at equal compute with its search "
                             "shared, target >= +1 with the interval above 0: **")
    constant = next(line for line in lines if line.startswith("- `strength+2` (2 members"))
    assert "+5.00 [+5.00, +5.00] (per seed: +5.00, +5.00, +5.00)" in constant
    assert "inner steps per run 16 against 32: +5.00" in constant and constant.endswith(" points")  # not a learner
    # an arm that spends fewer steps than the learner's shared cost gets no verdict; one that spends more does
    size_study(tmp_path, "small", [0, 1, 2], 3, {"strength+2": with_steps([0.40, 0.50, 0.60], 24)})
    learning.main(["--report", "--tag", "small", "--out", str(tmp_path), "--pair-with", "a", "b"])
    small = pairs(tmp_path, "small")
    assert "points, **at unequal compute**, so no verdict" in small and "met" not in small
    size_study(tmp_path, "big", [0, 1, 2], 5, {"strength+2": with_steps([0.40, 0.50, 0.60], 40)})
    learning.main(["--report", "--tag", "big", "--out", str(tmp_path), "--pair-with", "a", "b"])
    big = pairs(tmp_path, "big")
    assert "against 40: with more steps for the arm, which favours it, target >= +1 with the interval above 0:" in big
    # more runs reusing the search (fitted on seeds 7, 8 in another study) share it further: 16 + 48 / 5 = 25.6
    size_study(tmp_path, "later", [7, 8], 2, {"fitted": with_steps([0.5, 0.5], 64)})
    (tmp_path / "learning_noise.json").write_text(json.dumps({"method": "prior", "difference_points": 0.1}))  # no study
    (tmp_path / "learning_old.json").write_text(json.dumps({"preset": "smoke", "seeds": [0], "methods": {
        "none": scores(0.3)}}))  # a study from before env options were recorded
    assert learning.method_runs(tmp_path)["fitted"] == 5  # a, b and later
    assert learning.method_runs(tmp_path)["strength+2"] == 12  # 3 seeds at each of 2, 3, 4 and 5 members
    assert learning.method_runs(tmp_path)["none"] == 1
    assert learning.search_runs(tmp_path)["fitted"] == 5
    # the count is pinned when a pairing is first rendered: a section already published keeps its basis
    assert json.loads((tmp_path / "learning_eq.json").read_text())["search_runs"] == {"fitted": 3, "strength+2": 6}
    learning.main(["--report", "--tag", "eq", "--out", str(tmp_path), "--pair-with", "a", "b"])
    assert "(32 with its search shared over its 3 runs) against 32: at equal compute" in pairs(tmp_path, "eq")
    # a study paired for the first time now shares it over all 5, and the probe's other readers count too
    size_study(tmp_path, "bigger", [0, 1, 2], 5, {"strength+2": with_steps([0.40, 0.50, 0.60], 40)})
    learning.main(["--report", "--tag", "bigger", "--out", str(tmp_path), "--pair-with", "a", "b"])
    assert "(26 with its search shared over its 5 runs) against 40: with more steps" in pairs(tmp_path, "bigger")
    size_study(tmp_path, "ppo", [9], 2, {"ppo_fitted": with_steps([0.5], 64), "prior_fitted": with_steps([0.5], 64)})
    assert learning.search_runs(tmp_path)["fitted"] == learning.search_runs(tmp_path)["ppo_fitted"] == 7
    capsys.readouterr()


def test_runs_at_different_torch_thread_counts_do_not_pair(tmp_path, capsys):
    from adaptive_de.errors import run_cli
    size_study(tmp_path, "eq", [0, 1, 2], 4, {"strength+2": {**with_steps([0.4, 0.5, 0.6], 32),
                                                             "torch_threads": [2, 1, 1]}})
    size_study(tmp_path, "a", [0, 1, 2], 2, {"fitted": {**with_steps([0.5] * 3, 64), "torch_threads": [2, 1, 1]}})
    size_study(tmp_path, "b", [0, 1, 2], 2, {"fitted": {**with_steps([0.5] * 3, 64), "torch_threads": [1, None, 2]}})
    argv = ["--report", "--tag", "eq", "--out", str(tmp_path), "--pair-with"]
    assert run_cli(learning.main, [*argv, "a"]) == 0  # each seed at one count, an unrecorded one left unchecked
    capsys.readouterr()
    before = (tmp_path / "learning_eq.json").read_text()
    assert run_cli(learning.main, [*argv, "b"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: learning_b.json cannot pair by seed with this study: it ran seed 0 at 1 torch thread(s) "
                   "(here 2); seed 2 at 2 torch thread(s) (here 1)\n")
    assert (tmp_path / "learning_eq.json").read_text() == before


@pytest.mark.parametrize("others, argv, message", [
    ({"a": ([0, 1], {})}, [], "the studies a ran seeds [0, 1]; pairing needs this study's [0, 1, 2], each once"),
    ({"a": ([0, 1, 2], {"rounds": 2})}, [], "learning_a.json cannot pair by seed with this study: it ran env"),
    ({"a": ([0, 1, 2], {}, "CPU Y")}, [], "learning_a.json cannot pair by seed with this study: it ran CPU CPU Y"),
    ({"a": ([0, 1], {}), "b": ([2], {"members": 3})}, [], "the studies a, b ran populations of [2, 3] members"),
    ({"a": ([0, 1, 2], {})}, ["--pair-with", "a"], "--pair-with goes with --report --tag T"),
])
def test_pairing_with_another_population_size_refuses_studies_that_do_not_pair(others, argv, message, tmp_path,
                                                                                capsys):
    from adaptive_de.errors import run_cli
    size_study(tmp_path, "eq", [0, 1, 2], 4, {"strength+2": with_steps([0.4, 0.5, 0.6], 32)})
    for tag, (seeds, env, *cpu) in others.items():
        fitted = {"fitted": with_steps([0.5] * len(seeds), 64)}
        size_study(tmp_path, tag, seeds, env.get("members", 2), fitted, env, *cpu)
    before = (tmp_path / "learning_eq.json").read_text()
    argv = argv or ["--report", "--tag", "eq", "--out", str(tmp_path), "--pair-with", *others]
    assert run_cli(learning.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
    assert (tmp_path / "learning_eq.json").read_text() == before and not list(tmp_path.glob("*.png"))


def reading(tmp_path, tag, probe):
    """Mark side study ``tag`` in ``tmp_path`` as one whose probe readers read ``probe`` (``--probe``)."""
    path = tmp_path / f"learning_{tag}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "probe": probe}))


def test_a_search_is_shared_only_over_the_runs_that_read_its_probe_file_and_such_runs_pair_only_with_each_other(
        tmp_path, capsys):
    from adaptive_de.errors import run_cli
    size_study(tmp_path, "a", [0, 1, 2], 2, {"fitted": with_steps([0.5] * 3, 64)})  # before --probe: the default
    size_study(tmp_path, "b", [0, 1, 2], 2, {"fitted": with_steps([0.5] * 3, 64)})
    size_study(tmp_path, "c", [3], 2, {"ppo_fitted": with_steps([0.5], 64)})
    for tag in ("b", "c"):
        reading(tmp_path, tag, "docs/learning_probe_x.json")
    assert learning.search_runs(tmp_path)["fitted"] == 3  # a's runs only
    assert learning.search_runs(tmp_path, Path("elsewhere/learning_probe_x.json"))["fitted"] == 4  # b's and c's
    studies = [json.loads((tmp_path / f"learning_{tag}.json").read_text()) for tag in ("a", "b")]
    constant = {**studies[0], "methods": {"strength+2": studies[0]["methods"]["fitted"]}}  # reads no probe
    assert learning.paired_probe([constant, studies[1]]) == Path("docs/learning_probe_x.json")
    assert learning.paired_probe([constant]) == learning.PROBE_FILE == learning.paired_probe(studies)
    size_study(tmp_path, "eq", [0, 1, 2], 4, {"strength+2": with_steps([0.4, 0.5, 0.6], 32)})
    size_study(tmp_path, "a1", [0], 2, {"fitted": with_steps([0.5], 64)})
    size_study(tmp_path, "b2", [1, 2], 2, {"fitted": with_steps([0.5] * 2, 64)})
    reading(tmp_path, "b2", "docs/learning_probe_x.json")
    before = (tmp_path / "learning_eq.json").read_text()
    assert run_cli(learning.main, ["--report", "--tag", "eq", "--out", str(tmp_path), "--pair-with", "a1", "b2"]) == 2
    assert capsys.readouterr().err == ("error: the studies a1, b2 read the probe files learning_probe16.json, "
                                       "learning_probe_x.json: pair with studies that read one\n")
    assert (tmp_path / "learning_eq.json").read_text() == before


def test_a_study_of_a_probe_reader_names_the_probe_file_and_the_recipe_it_gives(tmp_path):
    from tests.conftest import probe_runs, write_probe_study
    effects = np.zeros(len(OPS))
    effects[OPS.index("hue")], effects[OPS.index("erase")] = 1.0, -1.0  # clearly good and clearly bad
    source = write_probe_study(tmp_path / "p.json", probe_runs(effects, runs=2, sigma=0.5), [7, 8], compute=100)
    data = {"methods": {"fitted": scores(0.5), "oracle": scores(0.6)}, "probe": source}
    text = learning.probe_source(data)
    assert text.startswith(f"- `fitted` read the `probe` runs in {source} (seeds [7, 8], 200 inner steps); the recipe "
                           "`fitted` trains from them, its edits of `strength+2`: ")
    base = learning.strength_levels(2)
    assert f"erase {base['erase']} -> 0" in text and f"hue {base['hue']} -> {MAX_LEVEL}" in text
    assert learning.probe_source({"methods": {"oracle": scores(0.6)}, "probe": source}) == ""


def test_ppo_fitted_schedule_is_read_as_offsets_of_fitted_recipe_and_its_readings_are_reported():
    from agents.fitted import fitted_levels, fitted_menu, op_effects, read_probe
    probe = read_probe(str(learning.DOCS / learning.study_file(learning.PROBE_STUDY)))
    items = [[levels[op] for op in OPS] for levels, _ in fitted_menu(fitted_levels(**op_effects(*probe["samples"])))
             .values()]
    run = [{"levels": [items[4], items[4]], "rewards": [0.0, 0.0]},  # both at +2, fitted's recipe
           {"levels": [items[4], items[2]], "rewards": [0.0, 0.0]}]  # +2 and +0
    methods = {"ppo_fitted": scores(0.60, 0.61, 0.62), "prior_fitted": scores(0.59, 0.60, 0.61),
               "fitted": scores(0.58, 0.60, 0.60)}
    means = learning.strength_means({"schedules": {"ppo_fitted": [run], "prior_fitted": []}})
    np.testing.assert_allclose(means["ppo_fitted"], [[2.0, 1.0], [2.0, 1.0]])  # one seed, then the mean
    assert set(means) == {"ppo_fitted"}
    rows = np.array([[2.0] * 4 + [1.0] * 8 + [0.0] * 4, [2.0] * 12 + [1.0] * 4])  # two seeds of 16 rounds
    text = learning.strength_schedules({"ppo_fitted": np.vstack([rows, rows.mean(axis=0)])})
    assert "(+2 is `fitted`'s recipe); rounds 1-4 +2.00 -> last 4 +0.50 (moved -1.50 [" in text
    rows = np.array([[2.0] * 6 + [1.0] * 12 + [0.0] * 6, [2.0] * 6 + [1.0] * 18])  # 24 rounds: a quarter is six
    text = learning.strength_schedules({"ppo_fitted": np.vstack([rows, rows.mean(axis=0)])})
    assert "rounds 1-6 +2.00 -> last 6 +0.50 (moved -1.50 [" in text
    # the within-round contrast of +1 against +2: rounds that hold both, as independent estimates
    one_down = [{"levels": [items[3], items[4], items[4]], "rewards": [gap, 0.0, -gap]} for gap in (1.0, 3.0)]
    mixed = {"probe": str(learning.PROBE_FILE), "schedules": {
        "ppo_fitted": [run + one_down], "ppo_fitted_often": [one_down[::-1] + run], "prior_fitted": []}}
    text = learning.offset_contrast(mixed)  # rounds 3, 4 (+1.5, +4.5) and 1, 2 (+4.5, +1.5); run's rounds hold no +1
    assert "members at +1 minus members at +2" in text and "ppo_fitted, ppo_fitted_often pooled" in text
    assert "all +3.00 ± 0.87 (4 rounds); rounds 1-2 +3.00 ± 1.50 (2 rounds); rounds 3-4 +3.00 ± 1.50 (2 rounds)" in text
    assert learning.offset_contrast({"probe": str(learning.PROBE_FILE), "schedules": {"ppo_fitted": [run]}}) == ""
    # one round later: member 0 (+1) gained 1 + 3, members 1 and 2 (+2) 0 + 0 and -1 - 3; with an exploit after round
    # 1, member 2 (the worst) took member 0's model, so its sum is no longer its own choice's and is left out
    later = {"probe": str(learning.PROBE_FILE), "preset": "smoke", "schedules": {"ppo_fitted": [one_down]}}
    assert learning.offset_gaps({**later, "env": {"members": 3, "rounds": 2, "exploit_every": 4}}, lag=1) == [(0, 6.0)]
    assert learning.offset_gaps({**later, "env": {"members": 3, "rounds": 2, "exploit_every": 1}}, lag=1) == [(0, 4.0)]
    # oracle_mix: members on the oracle's recipe against members on fitted's, in rounds that hold both
    from benchmarks.headroom import MATCHED_LEVELS
    oracle = [MATCHED_LEVELS.get(op, 0) for op in OPS]
    mix = [{"levels": [oracle, items[4], items[4]], "rewards": [2.0, 0.0, -2.0]},
           {"levels": [oracle, oracle, items[4]], "rewards": [1.0, 1.0, -2.0]},
           {"levels": [oracle] * 3, "rewards": [0.0, 0.0, 0.0]},
           {"levels": [items[4], oracle, items[4]], "rewards": [0.0, -1.0, 1.0]}]
    study = {"preset": "smoke", "env": {"members": 3, "rounds": 4, "exploit_every": 8},
             "schedules": {learning.ORACLE_MIX: [mix]}}
    assert learning.mix_gaps(study) == [(0, 3.0), (1, 3.0), (3, -1.5)]  # round 3 holds the oracle's recipe only
    # summed over the round and the next: member 0 (oracle) gained 2 + 1, members 1 and 2 (fitted) 0 + 1 and -2 - 2;
    # from round 1, 1 + 0 twice against -2 + 0; round 2 holds the oracle's recipe only
    assert learning.mix_gaps(study, lag=1) == [(0, 4.5), (1, 3.0)]
    text = learning.mix_contrast(study)
    assert "the oracle's minus `fitted`'s" in text and "in the round itself: all +1.50 ± 1.50 (3 rounds)" in text
    assert "summed over the round and the next 2:" in text and learning.mix_contrast({"schedules": {}}) == ""
    # gaps 3, 3, -1.5 spread by 2.60: 1.5 ± 1.96 x 2.60 / sqrt(3); (1.96 x 2.60 / 1.5)^2 = 11.5, so 12 rounds, and
    # the one run held both recipes in 3 rounds
    assert "95% interval (mean ± 1.96 standard errors): -1.44 to +4.44" in text
    assert "spreads by 2.60 points, so 12 rounds that hold both" in text and "4.0 runs' worth" in text
    # whether members agree: run ends with both at +2 and then +2/+0, one_down never agrees, locked holds +2 from 3
    locked = [{"levels": [items[4], items[2]]}, {"levels": [items[3], items[3]]}] + [{"levels": [items[4]] * 2}] * 6
    agreement = learning.member_agreement({"probe": str(learning.PROBE_FILE), "schedules": {
        "ppo_fitted": [run + one_down, locked], "prior_fitted": [one_down + run[::-1]]}})
    # the shares: 1 of run + one_down's 4 rounds, 6 of locked's last six; (0.25 + 1) / 2 prints as 0.62
    assert ("- `ppo_fitted`, all members on one offset: 0.62 of the last six rounds; held to the end from round "
            "(offset), per seed: never, 3 (+2)\n") in agreement
    assert "- `prior_fitted`, all members on one offset: 0.25 of the last six rounds; held to the end from round " \
           "(offset), per seed: 4 (+2)\n" in agreement
    assert learning.member_agreement({"schedules": {"ppo": [run]}}) == ""
    gaps = learning.comparisons(methods)
    assert gaps["best_non_learning"] == "prior_fitted"  # fitted learned across runs: it is no candidate
    assert gaps["ppo_fitted_vs_fitted"]["gaps"] == pytest.approx([2.0, 1.0, 2.0])
    assert gaps["prior_fitted_vs_fitted"]["mean"] == pytest.approx(2 / 3)


def test_a_bandit_check_runs_at_the_torch_thread_count_asked_for(tmp_path, monkeypatch):
    import torch
    monkeypatch.chdir(tmp_path)  # --quick writes under runs/
    before, seen = torch.get_num_threads(), []
    want = before + 1  # not what the test session already runs at
    try:
        strength_bandit.bandit_main(["--quick", "--threads", str(want)], "doc", name="x.json", runs=2, quick_runs=2,
                                    measure=lambda runs: seen.append(torch.get_num_threads()) or {"runs": runs},
                                    plot=lambda data, out: None, report=lambda data: "", section="x")
    finally:
        torch.set_num_threads(before)
    assert seen == [want] and (tmp_path / "runs/x-quick/x.json").exists()


def test_the_probe_fit_predicts_a_within_round_gap_between_two_recipes(tmp_path):
    from tests.conftest import probe_runs, write_probe_study
    effects = np.zeros(len(OPS))
    effects[OPS.index("hue")], effects[OPS.index("erase")] = 0.5, -1.0
    source = write_probe_study(tmp_path / "probe.json", probe_runs(effects, runs=4, sigma=0.5), [1, 2, 3, 4])
    base = dict.fromkeys(OPS, 2)
    # hue 2 levels up (+0.5 each), erase 3 levels up (-1.0 each): 1.0 - 3.0 = -2.0
    text = learning.probe_gap({"probe": source}, {**base, "hue": 4, "erase": 3}, {**base, "erase": 0})
    assert text.startswith(f"the linear fit of the probe runs in {Path(source).as_posix()} predicts ")
    gap, se = (float(v) for v in re.fullmatch(r".* predicts ([+-]\d+\.\d+) ± (\d+\.\d+)", text).groups())
    assert 0 < se < 0.2 and abs(gap + 2.0) < 3 * se + 0.01

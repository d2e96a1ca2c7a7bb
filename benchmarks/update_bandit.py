"""How far does ``ppo_fitted`` move in one 24-round run, updated about three times or every two rounds?

    python -m benchmarks.update_bandit [--runs 30] [--quick] [--report]

The strength bandit (``benchmarks.strength_bandit``) at the size of the studies from scratch (4 members x 24 rounds),
with ``ppo_fitted``'s prior (peaked at +2, ``fitted``'s recipe) and each learner's own updates (its ``defaults``):
``ppo_fitted`` (a rollout of 8 rounds, 3 updates a run) and ``ppo_fitted_often`` (every 2 rounds, 12 updates). Only
the updates differ. The noise, ``SIGMA``, is the spread of a member-round's reward around its round's mean in
``learner_scratch24`` (docs/learning_learner_scratch24.json). The scenarios set the mean reward per offset -2..+2:
the reading of those runs (members one step below the recipe scored +0.44 points a round over members at it; the
lower offsets, drawn too rarely to read, set below the recipe), no effect (where the policy drifts on noise alone),
and the recipe best by 0.3 points a step (what a faster learner may cost).

Reported per learner and scenario: in the last six rounds, the value of the offsets chosen (mean reward over offset
0's, mean [95% CI] over runs) and the members' mean offset.

Writes docs/update_bandit.json, docs/update_bandit.png and a RESULTS.md section (``--quick``: 3 runs into
runs/update-bandit-quick/; ``--report`` re-renders the plot and section from the JSON).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_de.errors import run_cli
from agents.fitted import fitted_prior_logits
from agents.population import STRENGTHS
from agents.sb3 import PPOAgent, PPOFittedAgent, PPOFittedOftenAgent
from benchmarks.runs import fmt_mean_ci
from benchmarks.strength_bandit import StrengthBandit, bandit_main, plot_offsets

MEMBERS, ROUNDS = 4, 24  # learner_scratch24's population
SIGMA = 0.95  # a member-round's reward around its round's mean in learner_scratch24, points
LATE = slice(-6, None)  # the last six rounds, where learner_scratch24 read the learner's move
SCENARIOS = {"+1 best (learner_scratch24's reading)": [-0.5, -0.5, 0.0, 0.44, 0.0],
             "no effect": [0.0] * len(STRENGTHS),
             "+2 best by 0.3 a step": [0.3 * (k - 2) for k in STRENGTHS]}
LEARNERS = {"ppo_fitted": PPOFittedAgent, "ppo_fitted_often": PPOFittedOftenAgent}
SECTION = "ppo_fitted's update size on a simulated bandit (issue 12 design check)"


class FromRecipe(PPOAgent):
    """PPO over the bandit's strength menu from ``ppo_fitted``'s prior; its updates are given as options."""

    prior = staticmethod(fitted_prior_logits)


def play(learner: str, means: list[float], seed: int) -> np.ndarray:
    """One run of ``learner``'s updates on the bandit: the offsets' indices its members chose (rounds x members)."""
    bandit = StrengthBandit(means, members=MEMBERS, rounds=ROUNDS, sigma=SIGMA, seed=seed)
    FromRecipe(bandit, seed=seed, **LEARNERS[learner].defaults(ROUNDS, MEMBERS)).learn(ROUNDS * MEMBERS)
    return np.array(bandit.chosen[:ROUNDS])


def late_summary(chosen: np.ndarray, means: list[float]) -> dict[str, Any]:
    """From one learner's offset indices (runs x rounds x members) in one scenario: per round the members' mean offset
    (over runs), and per run the mean value and offset of what it chose in the last six rounds."""
    offsets = np.asarray(STRENGTHS)[chosen]
    return {"offset_per_round": offsets.mean(axis=(0, 2)).tolist(),
            "late_value_per_run": np.asarray(means)[chosen][:, LATE].mean(axis=(1, 2)).tolist(),
            "late_offset_per_run": offsets[:, LATE].mean(axis=(1, 2)).tolist()}


def measure_learners(runs: int, learners: Iterable[str], play: Callable[[str, list[float], int], np.ndarray],
                     summary: Callable[[np.ndarray, list[float]], dict[str, Any]]) -> dict[str, Any]:
    """Every learner's ``runs`` runs (``play``, seeds 0..runs-1) per scenario, each ``summary``-ised."""
    results: dict[str, Any] = {}
    for scenario, means in SCENARIOS.items():
        for learner in learners:
            chosen = np.stack([play(learner, means, seed) for seed in range(runs)])  # runs x rounds x members
            row = results.setdefault(scenario, {})[learner] = summary(chosen, means)
            print(f"{scenario}, {learner}: last six rounds value {np.mean(row['late_value_per_run']):+.3f}",
                  flush=True)
    return {"members": MEMBERS, "rounds": ROUNDS, "sigma": SIGMA, "runs": runs, "scenarios": SCENARIOS,
            "results": results}


def measure(runs: int) -> dict[str, Any]:
    """``late_summary`` of every learner's ``runs`` runs per scenario."""
    return measure_learners(runs, LEARNERS, play, late_summary)


def late_cell(row: dict[str, Any]) -> str:
    """One learner's last six rounds in one scenario: the value chosen (mean [95% CI] over runs) and the offset."""
    return f"{fmt_mean_ci(row['late_value_per_run'])}; offset {np.mean(row['late_offset_per_run']):+.2f}"


def late_table(data: dict[str, Any], learners: Iterable[str], cell: Callable[[dict[str, Any]], str]) -> str:
    """A markdown table: one row per scenario (its mean rewards and best value), one ``cell`` per learner."""
    learners = list(learners)
    rows = ["| scenario (mean reward per offset -2..+2) | best | " + " | ".join(f"`{m}`" for m in learners) + " |",
            "|---|---|" + "---|" * len(learners)]
    for scenario, means in data["scenarios"].items():
        rows.append(f"| {scenario} ({', '.join(f'{x or 0.0:+.2f}' for x in means)}) | {max(means):+.2f} | "
                    + " | ".join(cell(data["results"][scenario][m]) for m in learners) + " |")
    return "\n".join(rows)


def report(data: dict[str, Any]) -> str:
    return (f"Written by `python -m benchmarks.update_bandit` (docs/update_bandit.json): {data['runs']} runs per "
            f"learner and scenario, {data['members']} members x {data['rounds']} rounds, reward noise "
            f"{data['sigma']} points per member-round, rewards centred within each round, both learners from "
            "`ppo_fitted`'s prior (78% at +2). No task data: this chose `ppo_fitted_often`'s update size before "
            "`learner_often24` ran (a prototype gave the numbers its plan cites; this is its committed form).\n\n"
            "In the last six rounds, the value of the offsets chosen (mean reward over offset 0's; mean [95% CI] over "
            "runs) and the members' mean offset:\n\n" + late_table(data, LEARNERS, late_cell)
            + "\n\n![update bandit](update_bandit.png)\n")


def plot(data: dict[str, Any], out: Path) -> None:
    plot_offsets(data, out, dict(zip(LEARNERS, ("C0", "C3"), strict=True)), "update_bandit.png")


def main(argv: list[str] | None = None) -> None:
    bandit_main(argv, __doc__, name="update_bandit.json", runs=30, quick_runs=3, measure=measure, plot=plot,
                report=report, section=SECTION)


if __name__ == "__main__":
    sys.exit(run_cli(main))

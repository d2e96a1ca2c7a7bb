"""Does reading the observation lock a population onto one offset? ``ppo_fitted_often`` and ``ppo_fitted_bandit`` on
a bandit that shows each member its last levels.

    python -m benchmarks.context_bandit [--runs 30] [--quick] [--report]

``benchmarks.update_bandit``'s bandit (4 members x 24 rounds, the task's noise, its three scenarios, every learner
from ``ppo_fitted``'s prior), with one change: each member observes what the task's population shows it, the run's
progress and its own last action (16 levels and the sampling mode, scaled to [0, 1]), instead of the progress alone.
In ``learner_often24`` every run of ``ppo_fitted_often`` ended with all four members on one offset although the
rewards favoured another; its linear policy reads those last levels, so a member's own choice can become its next
choice's cause. ``ppo_fitted_bandit`` differs only in not reading the observation; the frozen prior (learning rate
0) is the reference both are measured against.

Reported per learner and scenario, in the last six rounds: the value of the offsets chosen (mean reward over offset
0's, mean [95% CI] over runs), the members' mean offset, and the share of rounds in which all members chose the same
offset (against the frozen prior's, which puts 78% on one offset).

Writes docs/context_bandit.json, docs/context_bandit.png and a RESULTS.md section (``--quick``: 3 runs into
runs/context-bandit-quick/; ``--report`` re-renders the plot and section from the JSON).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from adaptive_de.augment import MAX_LEVEL, OPS
from adaptive_de.errors import run_cli
from agents.sb3 import PPOFittedBanditAgent, PPOFittedOftenAgent, SB3Agent
from benchmarks import update_bandit
from benchmarks.strength_bandit import StrengthBandit, bandit_main, plot_offsets
from benchmarks.update_bandit import LATE, MEMBERS, ROUNDS, SIGMA, FromRecipe
from envs.face_parsing import SAMPLING_MODES

SECTION = "Reading the observation on a simulated bandit (issue 12 design check)"


class LastActionBandit(StrengthBandit):
    """``StrengthBandit`` whose members observe the run's progress and their own last action (levels and sampling
    mode, scaled to [0, 1], zero before the first round), as ``envs.PopulationEnv``'s observation ends."""

    def __init__(self, means: list[float], **options: Any):
        self.last = np.zeros((options.get("members", MEMBERS), len(OPS) + 1))
        super().__init__(means, **options)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(2 + len(OPS),), dtype=np.float32)

    def rewards(self, actions: np.ndarray) -> np.ndarray:
        self.last = np.asarray(actions, dtype=float)
        return super().rewards(actions)

    def reset(self) -> np.ndarray:
        self.last = np.zeros_like(self.last)
        return super().reset()

    def _observations(self) -> np.ndarray:
        scale = np.array([MAX_LEVEL] * len(OPS) + [len(SAMPLING_MODES) - 1], dtype=float)
        return np.concatenate([super()._observations(), self.last / scale], axis=1).astype(np.float32)


class BlindFromRecipe(FromRecipe):
    """``FromRecipe`` whose policy does not read the observation, as ``ppo_fitted_bandit``'s."""

    reads_observation = PPOFittedBanditAgent.reads_observation


# learner -> (its policy on the bandit, the agent whose updates it takes, whether it learns)
LEARNERS: dict[str, tuple[type[SB3Agent], type[SB3Agent], bool]] = {
    "prior_fitted": (FromRecipe, PPOFittedOftenAgent, False),
    "ppo_fitted_often": (FromRecipe, PPOFittedOftenAgent, True),
    "ppo_fitted_bandit": (BlindFromRecipe, PPOFittedBanditAgent, True)}


def play(learner: str, means: list[float], seed: int) -> np.ndarray:
    """One run of ``learner`` on the bandit: the offsets' indices its members chose (rounds x members)."""
    policy, agent, learns = LEARNERS[learner]
    bandit = LastActionBandit(means, members=MEMBERS, rounds=ROUNDS, sigma=SIGMA, seed=seed)
    options = {**agent.defaults(ROUNDS, MEMBERS), **({} if learns else {"learning_rate": 0.0})}
    policy(bandit, seed=seed, **options).learn(ROUNDS * MEMBERS)
    return np.array(bandit.chosen[:ROUNDS])


def summary(chosen: np.ndarray, means: list[float]) -> dict[str, Any]:
    """``update_bandit.late_summary`` and per run the share of the last six rounds with all members on one offset."""
    late = chosen[:, LATE]
    return {**update_bandit.late_summary(chosen, means),
            "late_one_offset_per_run": (late == late[:, :, :1]).all(axis=2).mean(axis=1).tolist()}


def measure(runs: int) -> dict[str, Any]:
    """``summary`` of every learner's ``runs`` runs per scenario."""
    return update_bandit.measure_learners(runs, LEARNERS, play, summary)


def late_cell(row: dict[str, Any]) -> str:
    """``update_bandit.late_cell`` and the share of the last six rounds with all members on one offset."""
    return f"{update_bandit.late_cell(row)}; one offset {np.mean(row['late_one_offset_per_run']):.2f}"


def report(data: dict[str, Any]) -> str:
    return (f"Written by `python -m benchmarks.context_bandit` (docs/context_bandit.json): {data['runs']} runs per "
            f"learner and scenario, {data['members']} members x {data['rounds']} rounds, reward noise "
            f"{data['sigma']} points per member-round, rewards centred within each round, every learner from "
            "`ppo_fitted`'s prior (78% at +2), each member observing the run's progress and its own last action. "
            "No task data: this chose `ppo_fitted_bandit` before `learner_bandit24` ran.\n\n"
            "In the last six rounds, the value of the offsets chosen (mean reward over offset 0's; mean [95% CI] over "
            "runs), the members' mean offset, and the share of rounds in which all members chose one offset:\n\n"
            + update_bandit.late_table(data, LEARNERS, late_cell) + "\n\n![context bandit](context_bandit.png)\n")


def plot(data: dict[str, Any], out: Path) -> None:
    plot_offsets(data, out, dict(zip(LEARNERS, ("grey", "C3", "C2"), strict=True)), "context_bandit.png")


def main(argv: list[str] | None = None) -> None:
    bandit_main(argv, __doc__, name="context_bandit.json", runs=30, quick_runs=3, measure=measure, plot=plot,
                report=report, section=SECTION)


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""Could PPO carry experience across runs as well as the least-squares fit does? A design check on a simulated bandit.

    python -m benchmarks.carry_bandit [--runs 20] [--quick] [--report]

``fitted`` (``agents.fitted``) pools four ``probe`` runs (256 member-rounds, every op's level uniform) into one
least-squares fit and edits ``strength+2`` where an op's effect is clear; on the task it beat ``strength+2`` by about
2 points on fresh seeds. The RL way to carry experience across runs is AutoAugment's: one controller (here PPO over
every op's level) that keeps learning from run to run. This asks, before any task run, how much of the fit's value
PPO gets from the same number of samples.

The bandit stands in for a chain of population runs at the 16-round studies' sizes (4 members x 16 rounds per run,
``runs`` runs in a row): a member-round's reward is ``levels @ effects`` plus Gaussian noise of ``SIGMA`` points,
centred within the round. The effects are the fit's own point estimates from docs/learning_probe16.json (the task's
best guess at the truth; the bandit is linear in the levels, the task need not be). The learners:

- ``fitted``: the fit's rule on ``runs`` runs of uniform draws (``op_effects``, ``fitted_levels``);
- ``ppo``: PPO over every op's level with ``ppo_levels``' updates, from a prior peaked at ``strength+2``'s levels,
  learning over the ``runs`` runs in a row (one SB3 ``learn``: the policy carries from run to run);
- ``ppo, looser``: the same with a learning rate of 0.1 and no effective clip (clip range 5), which moves the policy
  further per update.

A recipe's value is ``effects @ (levels - strength+2's levels)``: reward points per member-round over ``strength+2``
(the best recipe in this bandit scores ``ORACLE``). Reported for each chain length: the fit's recipe, PPO's policy
after the chain (its expected levels) and what PPO's members trained in the chain's last run (mean [95% CI] over
``--runs`` repeats).

Writes docs/carry_bandit.json, docs/carry_bandit.png and a RESULTS.md section (``--quick``: 2 repeats into
runs/carry-bandit-quick/; ``--report`` re-renders the plot and section from the JSON).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de.augment import MAX_LEVEL, OPS  # noqa: E402
from adaptive_de.errors import run_cli  # noqa: E402
from agents.fitted import BASE_OFFSET, fitted_levels, op_effects, read_probe  # noqa: E402
from agents.population import prior_logits, strength_levels  # noqa: E402
from agents.sb3 import PPOLevelsAgent  # noqa: E402
from benchmarks.learning import PROBE_FILE  # noqa: E402
from benchmarks.runs import fmt_mean_ci, save_figure  # noqa: E402
from benchmarks.strength_bandit import StrengthBandit, bandit_main  # noqa: E402

MEMBERS, ROUNDS = 4, 16  # the 16-round studies' population (docs/learning_probe16.json "sizes")
SIGMA = 1.84  # a member-round's residual noise in the probe runs' fit, points (docs/LEARNING.md, probe16)
CHAINS = (4, 12)  # runs in a row: the probe's four, and three times as many
LOOSER = {"learning_rate": 0.1, "clip_range": 5.0}
BASE = np.array([strength_levels(BASE_OFFSET)[op] for op in OPS], dtype=float)  # strength+2, the value's zero
SECTION = "PPO carrying experience across runs, against the least-squares fit, on a simulated bandit (issue 12 design "\
          "check)"


class LevelsBandit(StrengthBandit):
    """``members`` members choosing every op's level for ``rounds`` rounds a run, run after run; a member's reward is
    ``levels @ effects`` plus noise of std ``sigma``, minus the round's mean. ``chosen`` keeps every round's levels."""

    def __init__(self, effects: np.ndarray, *, members: int = MEMBERS, rounds: int = ROUNDS, sigma: float = SIGMA,
                 seed: int = 0):
        super().__init__([0.0] * 5, members=members, rounds=rounds, sigma=sigma, seed=seed)
        self.effects = np.asarray(effects, dtype=float)

    def rewards(self, actions: np.ndarray) -> np.ndarray:
        levels = np.array([action[:len(OPS)] for action in actions], dtype=float)
        self.chosen.append(levels)
        return levels @ self.effects + self.sigma * self.rng.standard_normal(self.num_envs)


class CarriedPPO(PPOLevelsAgent):
    """``ppo_levels`` from a prior peaked at ``strength+2``'s levels, the recipe ``fitted`` edits."""

    agent_name = "ppo_carried"
    prior = staticmethod(lambda: prior_logits(strength_levels(BASE_OFFSET)))


def value(levels: np.ndarray, effects: np.ndarray) -> np.ndarray:
    """Reward points per member-round over ``strength+2`` of ``levels`` (..., len(OPS))."""
    return (np.asarray(levels, dtype=float) - BASE) @ effects


def oracle(effects: np.ndarray) -> float:
    """The best recipe's value: every op at the end of its range its effect points to."""
    return float(value(np.where(effects > 0, MAX_LEVEL, 0), effects))


def fitted_value(effects: np.ndarray, runs: int, seed: int) -> float:
    """The value of ``fitted_levels`` fitted to ``runs`` runs of uniform draws on the bandit."""
    rng = np.random.default_rng(seed)
    rounds = runs * ROUNDS
    levels = rng.integers(MAX_LEVEL + 1, size=(rounds * MEMBERS, len(OPS))).astype(float)
    rewards = levels @ effects + SIGMA * rng.standard_normal(len(levels))
    fit = fitted_levels(**op_effects(levels, rewards, np.repeat(np.arange(rounds), MEMBERS)))
    return float(value([fit[op] for op in OPS], effects))


def ppo_values(effects: np.ndarray, runs: int, seed: int, **options: Any) -> tuple[float, float]:
    """A chain of ``runs`` runs of ``CarriedPPO``: the value of its policy's expected levels after the chain, and of
    what its members trained in the last run."""
    bandit = LevelsBandit(effects, seed=seed)
    agent = CarriedPPO(bandit, seed=seed, **options)
    agent.learn(runs * ROUNDS * MEMBERS)
    dists = agent.model.policy.get_distribution(torch.zeros((1, 1))).distribution[:len(OPS)]
    expected = [float(d.probs[0].detach().numpy() @ np.arange(MAX_LEVEL + 1)) for d in dists]
    last = np.array(bandit.chosen[(runs - 1) * ROUNDS:runs * ROUNDS])
    return float(value(expected, effects)), float(value(last, effects).mean())


def measure(repeats: int, chains: tuple[int, ...] = CHAINS) -> dict[str, Any]:
    """Each learner's values over ``repeats`` seeds, for each chain length."""
    effects = op_effects(*read_probe(str(PROBE_FILE))["samples"])["effect"]
    results: dict[str, Any] = {}
    for runs in chains:
        row: dict[str, list[float]] = {"fitted": [fitted_value(effects, runs, seed) for seed in range(repeats)]}
        for name, options in (("ppo", {}), ("ppo, looser", LOOSER)):
            pairs = [ppo_values(effects, runs, seed, **options) for seed in range(repeats)]
            row[f"{name}: policy after the chain"] = [p[0] for p in pairs]
            row[f"{name}: its last run"] = [p[1] for p in pairs]
        results[str(runs)] = row
        print(f"{runs} runs: " + "; ".join(f"{k} {np.mean(v):+.2f}" for k, v in row.items()), flush=True)
    return {"members": MEMBERS, "rounds": ROUNDS, "sigma": SIGMA, "repeats": repeats, "effects": effects.tolist(),
            "oracle": oracle(effects), "looser": LOOSER, "results": results}


def report(data: dict[str, Any]) -> str:
    chains = list(data["results"])
    names = list(data["results"][chains[0]])
    rows = ["| learner | " + " | ".join(f"{runs} runs" for runs in chains) + " |", "|---|" + "---|" * len(chains)]
    rows += [f"| {name} | " + " | ".join(fmt_mean_ci(data["results"][runs][name]) for runs in chains) + " |"
             for name in names]
    effects = ", ".join(f"{op} {e:+.2f}" for op, e in zip(OPS, data["effects"], strict=True) if abs(e) >= 0.2)
    return (f"Written by `python -m benchmarks.carry_bandit` (docs/carry_bandit.json): {data['repeats']} repeats per "
            f"learner and chain length, {data['members']} members x {data['rounds']} rounds a run, reward noise "
            f"{data['sigma']} points per member-round, rewards centred within each round, effects per level from "
            f"docs/learning_probe16.json's fit (those of at least 0.2: {effects}). No task data beyond that fit.\n\n"
            f"Value over `strength+2`, reward points per member-round (the best recipe: {data['oracle']:+.2f}; "
            f"mean [95% CI] over repeats):\n\n" + "\n".join(rows) + "\n\n![carry bandit](carry_bandit.png)\n")


def plot(data: dict[str, Any], out: Path) -> None:
    chains = [int(runs) for runs in data["results"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name in data["results"][str(chains[0])]:
        means = [np.mean(data["results"][str(runs)][name]) for runs in chains]
        ax.plot(chains, means, marker="o", label=name)
    ax.axhline(data["oracle"], color="grey", linestyle="--", label="best recipe")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="runs of search (4 members x 16 rounds each)", ylabel="value over strength+2 (points/round)",
           xticks=chains)
    ax.legend(fontsize=7)
    save_figure(fig, "carry_bandit.png", folder=out)


def main(argv: list[str] | None = None) -> None:
    bandit_main(argv, __doc__, name="carry_bandit.json", runs=20, quick_runs=2, measure=measure, plot=plot,
                report=report, section=SECTION)


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""How far can ``ppo_families`` move in one run? A design check on a simulated bandit at the measured noise.

    python -m benchmarks.family_bandit [--runs 40] [--quick] [--report]

The strength bandit's check (``benchmarks.strength_bandit``) for the learner over one strength offset per op family,
at the sizes of the 16-round studies (4 members x 16 rounds). Each round, every member's reward is the sum over the
op families (``agents.population.FAMILIES``) of ``slope`` x how far the family's levels lie from ``ppo_families``'
start (every family at +2; mean over the family's ops), plus Gaussian noise of ``SIGMA`` points, minus the round's
mean over members (group-relative, as in ``envs.PopulationEnv``). A negative slope rewards turning that family
down. The scenarios: no family matters (what the learner does on noise alone), occlusion down, and degradation and
occlusion down, each at two slopes.

Reported per scenario and family: how far the family's levels moved from rounds 1-4 to rounds 13-16 (mean over the
members, then mean and 95% interval over runs). A learner that cannot tell a family to turn down here, where the
slope is known and the noise Gaussian, will not on the task.

Writes docs/family_bandit.json, docs/family_bandit.png and a RESULTS.md section (``--quick``: 3 runs into
runs/family-bandit-quick/; ``--report`` re-renders the plot and section from the JSON).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de.augment import OPS  # noqa: E402
from adaptive_de.errors import run_cli  # noqa: E402
from agents import make_agent  # noqa: E402
from agents.population import FAMILIES, family_changes  # noqa: E402
from benchmarks.runs import fmt_mean_ci, save_figure  # noqa: E402
from benchmarks.strength_bandit import SIGMA, StrengthBandit, bandit_main  # noqa: E402

MEMBERS, ROUNDS = 4, 16  # the 16-round studies' population (docs/learning_ceiling16.json "sizes")
EARLY, LATE = slice(0, 4), slice(-4, None)  # the rounds a family's move is measured between (also in studies)
LEARNER = "ppo_families"
# family -> reward per level of the family's mean change from the start (points); families not named: 0
SCENARIOS: dict[str, dict[str, float]] = {
    "no family matters": {},
    "occlusion down, 0.4": {"occlusion": -0.4},
    "occlusion down, 0.8": {"occlusion": -0.8},
    "degradation and occlusion down, 0.4": {"degradation": -0.4, "occlusion": -0.4},
    "degradation and occlusion down, 0.8": {"degradation": -0.8, "occlusion": -0.8},
}
SECTION = "ppo_families on a simulated bandit (issue 12 design check)"


class FamilyBandit(StrengthBandit):
    """``members`` members for ``rounds`` rounds; a member's reward is ``slopes`` (per family) dotted with its
    ``family_changes``, plus noise of std ``sigma``, minus the round's mean. ``chosen`` keeps every round's levels."""

    def __init__(self, slopes: dict[str, float], *, members: int = MEMBERS, rounds: int = ROUNDS,
                 sigma: float = SIGMA, seed: int = 0):
        super().__init__([0.0] * 5, members=members, rounds=rounds, sigma=sigma, seed=seed)
        self.slopes = np.array([slopes.get(family, 0.0) for family in FAMILIES])

    def rewards(self, actions: np.ndarray) -> np.ndarray:
        levels = np.array([action[:len(OPS)] for action in actions])
        self.chosen.append(levels)
        return family_changes(levels) @ self.slopes + self.sigma * self.rng.standard_normal(self.num_envs)


def play(slopes: dict[str, float], seed: int) -> np.ndarray:
    """One run of ``ppo_families`` on the bandit: each round's member-mean ``family_changes`` (rounds x families)."""
    bandit = FamilyBandit(slopes, seed=seed)
    make_agent(LEARNER, bandit, seed=seed).learn(ROUNDS * MEMBERS)
    return family_changes(np.array(bandit.chosen[:ROUNDS])).mean(axis=1)


def measure(runs: int) -> dict[str, Any]:
    """``runs`` runs per scenario: per round the families' mean change (over runs), per run each family's move."""
    results: dict[str, Any] = {}
    for scenario, slopes in SCENARIOS.items():
        changes = np.stack([play(slopes, seed) for seed in range(runs)])  # runs x rounds x families
        moved = changes[:, LATE].mean(axis=1) - changes[:, EARLY].mean(axis=1)
        results[scenario] = {"change_per_round": changes.mean(axis=0).tolist(), "moved_per_run": moved.tolist()}
        print(f"{scenario}: moved " + ", ".join(f"{f} {m:+.2f}" for f, m in zip(FAMILIES, moved.mean(0), strict=True)),
              flush=True)
    return {"members": MEMBERS, "rounds": ROUNDS, "sigma": SIGMA, "runs": runs, "families": list(FAMILIES),
            "scenarios": SCENARIOS, "results": results}


def moved(row: dict[str, Any], family: int) -> str:
    return fmt_mean_ci([run[family] for run in row["moved_per_run"]])


def report(data: dict[str, Any]) -> str:
    families = data["families"]
    rows = ["| scenario (reward per level, points) | " + " | ".join(families) + " |", "|---|" + "---|" * len(families)]
    for scenario, row in data["results"].items():
        rows.append(f"| {scenario} | " + " | ".join(moved(row, i) for i in range(len(families))) + " |")
    return (f"Written by `python -m benchmarks.family_bandit` (docs/family_bandit.json): {data['runs']} runs of "
            f"`{LEARNER}` per scenario, {data['members']} members x {data['rounds']} rounds, reward noise "
            f"{data['sigma']} points per member, rewards centred within each round. No task data.\n\n"
            "How far each family's levels moved from rounds 1-4 to rounds 13-16 (mean change of its ops' levels; mean "
            "[95% CI] over runs); a family the scenario rewards for turning down should move below 0, the others "
            "stay near 0:\n\n" + "\n".join(rows) + "\n\n![family bandit](family_bandit.png)\n")


def plot(data: dict[str, Any], out: Path) -> None:
    scenarios = data["results"]
    fig, axes = plt.subplots(1, len(scenarios), figsize=(3.2 * len(scenarios), 3.2), sharey=True)
    rounds = np.arange(1, data["rounds"] + 1)
    for ax, (scenario, row) in zip(axes, scenarios.items(), strict=True):
        changes = np.array(row["change_per_round"])
        for i, family in enumerate(data["families"]):
            ax.plot(rounds, changes[:, i], marker=".", label=family)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_title(scenario, fontsize=8)
        ax.set(xlabel="round")
    axes[0].set_ylabel("levels from the start (mean over members, runs)")
    axes[0].legend(fontsize=7)
    save_figure(fig, "family_bandit.png", folder=out)


def main(argv: list[str] | None = None) -> None:
    bandit_main(argv, __doc__, name="family_bandit.json", runs=40, quick_runs=3, measure=measure, plot=plot,
                report=report, section=SECTION)


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""How far can a strength learner get in one run? ``ppo`` and ``ppo_flat`` on a simulated bandit at the measured noise.

    python -m benchmarks.strength_bandit [--runs 80] [--quick] [--report]

A design check that touches no task data: it stands in for a population run at the learning study's sizes (4
members x 8 rounds) with a bandit over ``ppo``'s strength menu. Each round, every member's reward is the mean
reward of the offset it chose plus Gaussian noise of ``SIGMA`` points (one member's round-reward noise measured by
``benchmarks.reward_signal``), minus the round's mean over members (the population's group-relative reward). The
scenarios set how the mean reward grows with the offset: by ``STEP`` points per offset towards +2 or towards -2
(the main task's late schedule and the task without shift), or peaked at +1 (where a constant +1 did best).

Each learner runs ``--runs`` times per scenario on its own seeds. Reported per round: the members' mean offset
and the mean reward of what they chose (relative to offset 0, so the prior's centre scores 0 and the best offset
``max(means)``); in rounds 5-8, that value's mean and 95% interval over runs.

Writes docs/strength_bandit.json, docs/strength_bandit.png and a RESULTS.md section (``--quick``: 5 runs into
runs/strength-bandit-quick/; ``--report`` re-renders the plot and section from the JSON).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import matplotlib
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de.augment import MAX_LEVEL, OPS  # noqa: E402
from adaptive_de.errors import UserError, run_cli  # noqa: E402
from agents import make_agent  # noqa: E402
from agents.population import STRENGTHS, strength_index  # noqa: E402
from benchmarks.runs import DOCS, apply_threads, fmt_mean_ci, publish_study, save_figure, study_parser  # noqa: E402
from envs.face_parsing import SAMPLING_MODES  # noqa: E402

MEMBERS, ROUNDS = 4, 8  # the learning study's population (docs/learning.json "sizes")
SIGMA = 1.04  # one member's round-reward noise, points (docs/reward_signal.json "analysis.sigma")
STEP = 0.4  # mean reward per offset step, points: half the oracle-vs-prior signal per round (+0.81)
SCENARIOS = {"+2 best": [STEP * k for k in STRENGTHS], "-2 best": [STEP * -k for k in STRENGTHS],
             "+1 best": [-2 * STEP, -STEP, 0.0, STEP, STEP / 2]}
LEARNERS = ("ppo", "ppo_flat")
LATE = slice(ROUNDS // 2, ROUNDS)  # rounds 5-8: where the learner's moves have had time to count
SECTION = "Strength learners on a simulated bandit (issue 12 design check)"


class StrengthBandit(VecEnv):
    """``members`` members choosing ``STRENGTH_MENU`` actions for ``rounds`` rounds; each member's reward is its
    offset's mean reward plus noise of std ``sigma``, minus the round's mean (group-relative, as in
    ``envs.PopulationEnv``). ``chosen`` keeps the offsets' indices (rounds x members)."""

    render_mode = None

    def __init__(self, means: list[float], *, members: int = MEMBERS, rounds: int = ROUNDS, sigma: float = SIGMA,
                 seed: int = 0):
        action_space = gym.spaces.MultiDiscrete([MAX_LEVEL + 1] * len(OPS) + [len(SAMPLING_MODES)])
        super().__init__(members, gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32), action_space)
        self.means, self.rounds, self.sigma = np.asarray(means, dtype=float), rounds, sigma
        self.rng = np.random.default_rng(seed)
        self.offsets = strength_index()
        self.round, self.chosen, self._actions = 0, [], None

    def _observations(self) -> np.ndarray:  # the run's progress, as PopulationEnv's first feature
        return np.full((self.num_envs, 1), self.round / self.rounds, dtype=np.float32)

    def reset(self) -> np.ndarray:
        self.round = 0
        return self._observations()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def rewards(self, actions: np.ndarray) -> np.ndarray:
        """Each member's reward before centring (recording what it chose in ``chosen``)."""
        chosen = np.array([self.offsets[tuple(a[:len(OPS)])] for a in actions])
        self.chosen.append(chosen)
        return self.means[chosen] + self.sigma * self.rng.standard_normal(self.num_envs)

    def step_wait(self):
        rewards = self.rewards(self._actions)
        self.round += 1
        done = self.round == self.rounds
        observations = self._observations()
        infos = [{"terminal_observation": o} if done else {} for o in observations]
        if done:
            observations = self.reset()
        return observations, (rewards - rewards.mean()).astype(np.float32), np.full(self.num_envs, done), infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name)] * self.num_envs

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [None] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * self.num_envs


def play(learner: str, means: list[float], seed: int) -> np.ndarray:
    """One run of ``learner`` on the bandit: the offsets' indices its members chose (rounds x members)."""
    bandit = StrengthBandit(means, seed=seed)
    make_agent(learner, bandit, seed=seed).learn(ROUNDS * MEMBERS)
    return np.array(bandit.chosen[:ROUNDS])


def measure(runs: int) -> dict[str, Any]:
    """Every learner's ``runs`` runs per scenario: per round its members' mean offset and mean chosen reward (over
    runs), and per run its mean chosen reward in rounds 5-8."""
    results: dict[str, Any] = {}
    for scenario, means in SCENARIOS.items():
        for learner in LEARNERS:
            chosen = np.stack([play(learner, means, seed) for seed in range(runs)])  # runs x rounds x members
            value = np.asarray(means)[chosen].mean(axis=2)
            late = value[:, LATE].mean(axis=1)
            results.setdefault(scenario, {})[learner] = {
                "offset_per_round": np.asarray(STRENGTHS)[chosen].mean(axis=(0, 2)).tolist(),
                "value_per_round": value.mean(axis=0).tolist(), "late_value_per_run": late.tolist()}
            print(f"{scenario}, {learner}: rounds 5-8 value {late.mean():+.3f}", flush=True)
    return {"members": MEMBERS, "rounds": ROUNDS, "sigma": SIGMA, "runs": runs, "scenarios": SCENARIOS,
            "results": results}


def late_value(row: dict[str, Any]) -> str:
    return fmt_mean_ci(row["late_value_per_run"])


def report(data: dict[str, Any]) -> str:
    rows = ["| scenario (mean reward per offset -2..+2) | best | " + " | ".join(f"`{m}`" for m in LEARNERS) + " |",
            "|---|---|" + "---|" * len(LEARNERS)]
    for scenario, means in data["scenarios"].items():
        # (x or 0.0): a stored -0.0 prints as +0.0
        rows.append(f"| {scenario} ({', '.join(f'{x or 0.0:+.1f}' for x in means)}) | {max(means):+.2f} | "
                    + " | ".join(late_value(data["results"][scenario][m]) for m in LEARNERS) + " |")
    return (f"Written by `python -m benchmarks.strength_bandit` (docs/strength_bandit.json): {data['runs']} runs per "
            f"learner and scenario, {data['members']} members x {data['rounds']} rounds, reward noise "
            f"{data['sigma']} points per member, rewards centred within each round. No task data: this chose "
            "`ppo_flat`'s design before its study ran.\n\n"
            "Mean reward of the offsets chosen in rounds 5-8 (relative to offset 0, the peaked prior's centre; mean "
            "[95% CI] over runs):\n\n" + "\n".join(rows) + "\n\n![strength bandit](strength_bandit.png)\n")


def plot_offsets(data: dict[str, Any], out: Path, learners: dict[str, str], name: str) -> None:
    """One panel per scenario: the members' mean offset per round of each of ``learners`` (name -> colour), into
    ``out``/``name``."""
    fig, axes = plt.subplots(1, len(data["scenarios"]), figsize=(3.6 * len(data["scenarios"]), 3.2), sharey=True)
    rounds = np.arange(1, data["rounds"] + 1)
    for ax, (scenario, rows) in zip(axes, data["results"].items(), strict=True):
        for learner, colour in learners.items():
            ax.plot(rounds, rows[learner]["offset_per_round"], color=colour, marker="o", label=learner)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(xlabel="round", ylim=(min(STRENGTHS), max(STRENGTHS)))
        ax.set_title(scenario, fontsize=9)
    axes[0].set_ylabel("members' mean strength offset")
    axes[0].legend(fontsize=8)
    save_figure(fig, name, folder=out)


def plot(data: dict[str, Any], out: Path) -> None:
    plot_offsets(data, out, dict(zip(LEARNERS, ("C0", "C6"), strict=True)), "strength_bandit.png")


def bandit_main(argv: list[str] | None, doc: str, *, name: str, runs: int, quick_runs: int,
                measure: Callable[[int], dict[str, Any]], plot: Callable[[dict[str, Any], Path], None],
                report: Callable[[dict[str, Any]], str], section: str) -> None:
    """The command line of a simulated-bandit design check: ``--runs`` (default ``runs``; ``--quick``: ``quick_runs``
    into runs/) ``measure``d into docs/``name``, or with ``--report`` re-rendered from it; then ``plot`` and
    ``report`` (``benchmarks.runs.publish_study``)."""
    stem = name.removesuffix(".json")
    parser = study_parser(doc)
    parser.add_argument("--runs", type=int, default=runs, help=f"runs per learner and scenario (default {runs})")
    parser.add_argument("--report", action="store_true",
                        help=f"only re-render the plot and RESULTS section from docs/{name}")
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    if args.runs < 2:
        raise UserError(f"--runs must be at least 2 (the 95% interval needs two runs), not {args.runs}")
    publish_study(name, Path(f"runs/{stem.replace('_', '-')}-quick") if args.quick else DOCS,
                  None if args.report else lambda: measure(quick_runs if args.quick else args.runs),
                  plot=plot, report=report, section=section)


def main(argv: list[str] | None = None) -> None:
    bandit_main(argv, __doc__, name="strength_bandit.json", runs=80, quick_runs=5, measure=measure, plot=plot,
                report=report, section=SECTION)


if __name__ == "__main__":
    sys.exit(run_cli(main))

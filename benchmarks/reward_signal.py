"""How much does one round's reward say about a recipe? The signal a learner in a population run gets, and its noise.

    python -m benchmarks.reward_signal [--seeds 0 1 2] [--jobs 2] [--quick]

Per seed, one population run at the learning study's sizes (``cpu`` preset, 4 members x 8 rounds x 36
steps from the seed's CE warm-up) with exploits off and fixed actions: members 0 and 1 train the agent's
prior recipe (``agents.population.PRIOR_LEVELS`` at their centre), members 2 and 3 the learning study's
``oracle`` recipe (the headroom study's levels, which mirror the test nuisances). Every round gives

- the **signal**: the oracle pair's mean reward minus the prior pair's, the most a learner can hope to
  see between two recipes (they differ in 10 of 16 ops at once);
- the **noise**: the reward difference within a pair. Both members of a pair take the same action on the
  same batches, so it is what the reward varies by when only augmentation draws and dropout differ;
- the **comparison noise**: the std of one oracle member's reward minus one prior member's around the
  seed's mean signal, what a learner comparing two members actually sees.

From these: ``sigma``, the noise of one member's reward (the within-pair difference's std / sqrt 2), and the
number of rounds of two-member comparisons a learner needs to tell the two recipes apart at 2 standard
errors (from the comparison noise), against the 16 such comparisons that one run of the learning study
offers (8 rounds x 2 pairs).

``--common-draws`` runs the population with ``common_draws=True`` (every member of a round takes the same
augmentation, dropout and REINFORCE draws): a pair's members are then twins, and the comparison noise says
how much of the noise the shared draws remove. It writes ``reward_signal_common.json`` and its own plot
and section.

Writes docs/reward_signal.json, docs/reward_signal.png and a RESULTS.md section (``--quick``: the smoke
preset, one seed, into runs/reward-signal-quick/; ``--report`` re-renders the plot and section from the JSON).
"""
from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de.errors import run_cli  # noqa: E402
from adaptive_de.presets import EnvConfig  # noqa: E402
from agents.population import PRIOR_LEVELS, PRIOR_MODE  # noqa: E402
from benchmarks.headroom import MATCHED_LEVELS  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.runs import (  # noqa: E402
    DOCS,
    apply_threads,
    map_runs,
    mean_ci95,
    publish_study,
    save_figure,
    study_parser,
)
from envs.wrappers import menu_actions  # noqa: E402

SIZES = {"rounds": 8, "steps_per_round": 36}  # the learning study's (docs/learning.json "env")
SECTION = "Reward signal vs noise in a population run (issue 12)"
SECTION_COMMON = "Reward signal vs noise with common draws (issue 12)"
RECIPES = {"prior": PRIOR_LEVELS, "oracle": MATCHED_LEVELS}
PAIR = 2  # members per recipe


def recipe_actions() -> dict[str, np.ndarray]:
    """Each recipe's member action: its levels in OPS order, then the prior's sampling mode."""
    return dict(zip(RECIPES, menu_actions({name: (levels, PRIOR_MODE) for name, levels in RECIPES.items()}),
                    strict=True))


def seed_task(preset: str, env: dict[str, Any], seed: int) -> dict[str, Any]:
    """One population run with fixed actions (members: prior, prior, oracle, oracle); every round's rewards."""
    from envs import PopulationEnv

    rounds = EnvConfig.from_preset(preset, **env).rounds
    population = PopulationEnv(preset, **{**env, "members": PAIR * len(RECIPES), "exploit_every": rounds,
                                          "seed": seed})
    actions = np.repeat(np.stack(list(recipe_actions().values())), PAIR, axis=0)
    population.reset()
    rewards = []
    for _ in range(population.rounds):
        _, reward, _, _ = population.step(actions)
        rewards.append([float(r) for r in reward])
    print(f"seed {seed}: " + " ".join(f"{np.mean(r[PAIR:]) - np.mean(r[:PAIR]):+.2f}" for r in rewards), flush=True)
    return {"seed": seed, "rewards": rewards, "selection_reward": population.final["selection"]}


def analyse(rewards_by_seed: list[list[list[float]]]) -> dict[str, Any]:
    """Signal and noise from each seed's per-round rewards ``[round][member]`` (members: the prior pair, then
    the oracle pair), in reward points."""
    signal = [[statistics.fmean(r[PAIR:]) - statistics.fmean(r[:PAIR]) for r in rounds] for rounds in rewards_by_seed]
    within = [r[k] - r[k + 1] for rounds in rewards_by_seed for r in rounds for k in range(0, len(r), PAIR)]
    sigma = math.sqrt(statistics.fmean(d * d for d in within) / 2)  # the pair's members share their mean
    per_seed = [statistics.fmean(s) for s in signal]
    mean, ci95 = mean_ci95(per_seed)
    # One comparison: one member of each recipe, around its seed's mean signal (with independent draws about
    # sqrt(2) sigma; with common draws sigma is 0 by construction, and this is the noise that is left).
    deviations = [r[o] - r[p] - seed_mean for rounds, seed_mean in zip(rewards_by_seed, per_seed, strict=True)
                  for r in rounds for o in range(PAIR, 2 * PAIR) for p in range(PAIR)]
    comparison_sd = math.sqrt(statistics.fmean(d * d for d in deviations))
    needed = None if mean <= 0 else (2 * comparison_sd / mean) ** 2  # None: no positive signal
    # Summed over the run, the rewards are each member's final level on the reward subset minus the population's
    # (exploits are off): the oracle pair's lead, and how far two members of one recipe end apart.
    levels = [np.sum(rounds, axis=0) for rounds in rewards_by_seed]
    level_gap = [float(np.mean(end[PAIR:]) - np.mean(end[:PAIR])) for end in levels]
    level_sigma = math.sqrt(statistics.fmean((end[k] - end[k + 1]) ** 2 for end in levels
                                             for k in range(0, len(end), PAIR)) / 2)
    return {"signal_per_round": signal, "signal_per_seed": per_seed, "signal_mean": mean,
            "signal_ci95": ci95, "sigma": sigma, "comparison_sd": comparison_sd,
            "comparisons_needed": needed, "comparisons_per_run": len(signal[0]) * PAIR,
            "level_gap_per_seed": level_gap, "level_sigma": level_sigma}


def stem(common_draws: bool) -> str:
    """The study's file stem: ``reward_signal``, or ``reward_signal_common`` for a run with common draws."""
    return "reward_signal_common" if common_draws else "reward_signal"


def report(data: dict[str, Any]) -> str:
    a, m = data["analysis"], data["machine"]
    common = data.get("common_draws", False)
    interval = "" if a["signal_ci95"] is None else " (95% CI {:+.2f} to {:+.2f} over seeds)".format(*a["signal_ci95"])
    if a["comparisons_needed"] is None:
        needed = "The oracle recipe does not gain on the prior per round: no number of comparisons tells them apart"
    else:
        needed = (f"Telling the two recipes apart at 2 standard errors takes about {a['comparisons_needed']:.0f} "
                  "one-against-one comparisons")
    draws = ("the same batches and, with `common_draws=True`, the same augmentation, dropout and REINFORCE draws"
             if common else "the same batches")
    noise = ("the pairs' members are twins (sigma = 0 by construction)" if common else
             f"sigma = **{a['sigma']:.2f} points**")
    return (f"Written by `python -m benchmarks.reward_signal{' --common-draws' if common else ''}` "
            f"(docs/{stem(common)}.json) on {m['cpu']}, {m['cores']} "
            f"cores: seeds {data['seeds']}, preset `{data['preset']}`, a population of {data['members']} members x "
            f"{data['rounds']} rounds x {data['steps_per_round']} steps from the seed's CE warm-up, "
            "exploits off; members 0-1 train the agent's prior recipe, members 2-3 the `oracle` "
            f"recipe, on {draws}. Rewards are the env's: each member's gain of the reward on the "
            f"{data['val_subset']}-image reward subset over the round, minus the population's mean gain, in points.\n\n"
            f"- Signal, oracle pair minus prior pair per round: **{a['signal_mean']:+.2f} points**{interval}; "
            "per seed " + ", ".join(f"{s:+.2f}" for s in a["signal_per_seed"]) + ".\n"
            f"- Noise of one member's round reward with its action fixed: {noise}.\n"
            f"- Noise of one comparison (an oracle member's reward minus a prior member's, around the seed's mean "
            f"signal): **{a['comparison_sd']:.2f} points**.\n"
            f"- {needed}; one run offers {a['comparisons_per_run']}. A learner choosing each op's level sees smaller "
            "differences than these two recipes, which differ in 10 of 16 ops.\n"
            f"- Summed over the run (each member's final level on the reward subset, relative to the population's): "
            f"the oracle pair ends **{statistics.fmean(a['level_gap_per_seed']):+.2f} points** above the prior pair "
            "(per seed " + ", ".join(f"{g:+.2f}" for g in a["level_gap_per_seed"]) + "); one member's final level "
            f"varies by {a['level_sigma']:.2f} points with its action fixed"
            + (" (0: twins)" if common else f", against {a['sigma']:.2f} for one round's gain") + ". Most of a "
            "round's noise is the level's wobble, which the next round's gain takes back: credit summed over "
            "rounds (`ppo_return`) keeps the signal and drops that noise.\n\n"
            f"![reward signal]({stem(common)}.png)\n")


def plot(data: dict[str, Any], out: Path) -> None:
    a = data["analysis"]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    rounds = np.arange(1, len(a["signal_per_round"][0]) + 1)
    for seed, signal in zip(data["seeds"], a["signal_per_round"], strict=True):
        ax.plot(rounds, signal, marker="o", label=f"seed {seed}")
    band = a["comparison_sd"]
    ax.axhspan(-band, band, color="0.85", label="±1 std of one comparison's noise")
    ax.axhline(0, color="k", lw=0.8)
    common = data.get("common_draws", False)
    title = "Per-round reward signal vs noise" + (", common draws" if common else "")
    ax.set(xlabel="round", ylabel="oracle − prior reward (points)", title=title)
    ax.legend(fontsize=8)
    save_figure(fig, f"{stem(common)}.png", out)


def measure(preset: str, env: dict[str, Any], seeds: list[int], *, jobs: int) -> dict[str, Any]:
    """Every seed's run (``jobs`` at a time) and the analysis, with the machine and sizes they ran at."""
    runs = map_runs(seed_task, [(preset, env, seed) for seed in seeds], jobs)
    config = EnvConfig.from_preset(preset, **env)
    return {"machine": machine_info(), "preset": preset, "seeds": seeds, "members": PAIR * len(RECIPES),
            "rounds": config.rounds, "steps_per_round": config.steps_per_round, "val_subset": config.val_subset,
            "common_draws": config.common_draws,
            "recipes": {name: a.tolist() for name, a in recipe_actions().items()}, "runs": runs,
            "analysis": analyse([run["rewards"] for run in runs])}


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--common-draws", action="store_true",
                        help="members share each round's augmentation, dropout and REINFORCE draws")
    parser.add_argument("--report", action="store_true",
                        help="only re-analyse the stored rewards and re-render the plot and RESULTS section")
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    env = {"common_draws": True} if args.common_draws else {}
    sizes = ("smoke", env, [0]) if args.quick else ("cpu", {**SIZES, **env}, args.seeds)
    out = Path("runs/reward-signal-quick") if args.quick else DOCS
    name = stem(args.common_draws) + ".json"

    def reanalysed() -> dict[str, Any]:
        data = json.loads((out / name).read_text())
        return {**data, "analysis": analyse([run["rewards"] for run in data["runs"]])}

    publish_study(name, out, reanalysed if args.report else lambda: measure(*sizes, jobs=args.jobs),
                  plot=plot, report=report, section=SECTION_COMMON if args.common_draws else SECTION)


if __name__ == "__main__":
    sys.exit(run_cli(main))

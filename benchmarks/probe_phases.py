"""Does the best recipe change within a run? The ``probe`` runs' op effects, fitted per phase of the run.

    python -m benchmarks.probe_phases [--probe FILE] [--phases 2] [--tag T] [--report]

``fitted`` (``agents.fitted``) trains one recipe for the whole run, edited by op effects fitted to every round of four
``probe`` runs. A learner inside the run could beat every constant recipe only where the best recipe moves during
the run (docs/LEARNING.md, "How much room is left above ``fitted``"). The probe runs draw every op's level uniformly
every round, so their rewards can answer that without new runs: fit the effects on each phase's rounds alone (the
rounds split into ``--phases`` equal blocks) and ask

- whether the effects are the same in every phase (a Wald test; the phases' fits use disjoint samples, and the
  random design makes the ops' estimates nearly uncorrelated, so each op's difference counts on its own);
- whether they differ only in size (``effect_p = k_p * v``, one direction ``v`` for the run, one scale per phase),
  as they would if a later round simply moves the model less (the learning rate decays) — a schedule of recipes
  gains nothing over one recipe then;
- which recipe ``fitted``'s rule builds from each phase's fit, and what the phase-wise schedule would gain over the
  one recipe: by the phases' own fits (optimistic: chosen and scored on the same rewards) and cross-fitted (each
  run's rewards score the recipes the other runs chose: ``heldout_gain``).

The rewards' spread falls over the run, so the whole-run fit is also redone as weighted least squares (each round's
samples weighted by the inverse of that round's residual variance) to check that ``fitted``'s recipe does not rest
on the classical fit's equal-noise assumption.

Writes docs/probe_phases.json, docs/probe_phases.png and a RESULTS.md section (``--report`` re-renders them from the
JSON); ``--tag T`` keeps another probe study's reading apart (``probe_phases_T.json``, its plot and section). A reading
of finished runs: nothing is trained.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de.augment import OPS  # noqa: E402
from adaptive_de.errors import UserError, run_cli  # noqa: E402
from agents.fitted import (  # noqa: E402
    fitted_levels,
    op_effects,
    probe_samples,
    read_probe,
    recipe_edits,
    within_groups,
)
from benchmarks.learning import PROBE_FILE  # noqa: E402
from benchmarks.runs import DOCS, fmt_mean_ci, publish_study, save_figure, tagged_files  # noqa: E402

SECTION = "Does the best recipe change within a run? The probe runs' op effects per phase (issue 12 reading)"
SCALE_ITERATIONS = 200  # alternating least squares for the one-direction fit; it settles within a few dozen


def files(tag: str | None) -> tuple[str, str, str]:
    """The results file, plot and RESULTS section of the reading tagged ``tag`` (None: the first one's, of probe16)."""
    return tagged_files("probe_phases", SECTION, tag)


def phase_bounds(rounds: int, phases: int) -> list[tuple[int, int]]:
    """``phases`` equal blocks of ``rounds`` rounds, as (start, stop); a UserError where they do not divide."""
    if phases < 2 or rounds % phases:
        raise UserError(f"--phases must be at least 2 and divide the probe's {rounds} rounds, not {phases}")
    size = rounds // phases
    return [(start, start + size) for start in range(0, rounds, size)]


def phase_fits(runs: list, phases: int) -> list[dict[str, np.ndarray]]:
    """``op_effects`` of each phase's rounds of every probe run."""
    return [op_effects(*probe_samples([run[start:stop] for run in runs]))
            for start, stop in phase_bounds(len(runs[0]), phases)]


def chi2_sf(statistic: float, dof: int) -> float:
    """P(chi-square with ``dof`` degrees of freedom > ``statistic``): the regularised upper incomplete gamma."""
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                         torch.tensor(statistic / 2, dtype=torch.float64)))


def equality_test(fits: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Wald test that every phase has the same effects: each op's phase estimates against their inverse-variance
    mean, summed over ops and phases; (phases - 1) x ops degrees of freedom."""
    effect, weight = np.array([f["effect"] for f in fits]), np.array([f["se"] for f in fits]) ** -2
    common = (weight * effect).sum(axis=0) / weight.sum(axis=0)
    statistic = float((weight * (effect - common) ** 2).sum())
    dof = (len(fits) - 1) * effect.shape[1]
    return {"chi2": statistic, "dof": dof, "p": chi2_sf(statistic, dof)}


def scale_test(fits: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Weighted least-squares fit of ``effect_p = scale_p * direction`` (the first phase's scale 1) and the test
    that it leaves no more than noise: its chi-square on (phases - 1) x (ops - 1) degrees of freedom."""
    effect, weight = np.array([f["effect"] for f in fits]), np.array([f["se"] for f in fits]) ** -2
    scale = np.ones(len(fits))
    for _ in range(SCALE_ITERATIONS):
        direction = (weight * scale[:, None] * effect).sum(axis=0) / (weight * scale[:, None] ** 2).sum(axis=0)
        scale = (weight * direction * effect).sum(axis=1) / (weight * direction ** 2).sum(axis=1)
    scale, direction = scale / scale[0], direction * scale[0]
    statistic = float((weight * (effect - scale[:, None] * direction) ** 2).sum())
    dof = (len(fits) - 1) * (effect.shape[1] - 1)
    return {"chi2": statistic, "dof": dof, "p": chi2_sf(statistic, dof), "scales": scale.tolist()}


def round_spread(runs: list) -> list[float]:
    """The standard deviation of the member-round rewards at each round of the run, over every probe run."""
    return [float(np.std([r for run in runs for r in run[t]["rewards"]])) for t in range(len(runs[0]))]


def round_weights(samples: tuple[np.ndarray, np.ndarray, np.ndarray], fit: dict[str, np.ndarray],
                  rounds: int) -> np.ndarray:
    """One weight per sample of ``samples`` (``probe_samples`` of runs of ``rounds`` rounds): the inverse of its
    round's residual variance in ``fit``, their classical fit."""
    levels, rewards, groups = samples
    residual = within_groups(rewards - levels @ fit["effect"], groups)
    index = groups % rounds
    variance = np.array([residual[index == t].var() for t in range(rounds)])
    return 1 / variance[index]


def recipe_list(fit: dict[str, np.ndarray]) -> list[int]:
    """``fitted_levels`` of ``fit`` in OPS order, as the JSON keeps it."""
    levels = fitted_levels(fit["effect"], fit["se"])
    return [levels[op] for op in OPS]


def heldout_gain(runs: list, phases: int) -> list[float]:
    """The phase-wise schedule's gain over the one recipe, cross-fitted: for each probe run, both recipes come from the
    other runs' fits and are scored on that run's rewards alone. In the random design every op's level varies
    independently with the same variance, so within a round ``reward ~ levels @ effects`` projected on a recipe
    change ``delta`` has slope ``effects @ delta / |delta|^2``; that slope times ``|delta|^2`` is the change's value.
    One value per held-out run (reward points per member-round, averaged over the phases)."""
    gains = []
    for k in range(len(runs)):
        rest = runs[:k] + runs[k + 1:]
        one = np.array(recipe_list(op_effects(*probe_samples(rest))))
        per_phase = []
        for (start, stop), fit in zip(phase_bounds(len(runs[0]), phases), phase_fits(rest, phases), strict=True):
            delta = np.array(recipe_list(fit)) - one
            if not delta.any():
                per_phase.append(0.0)
                continue
            levels, rewards, groups = probe_samples([runs[k][start:stop]])
            z, y = within_groups(levels @ delta, groups), within_groups(rewards, groups)
            per_phase.append(float(y @ z / (z @ z) * (delta @ delta)))
        gains.append(float(np.mean(per_phase)))
    return gains


def measure(source: str, phases: int, tag: str | None = None) -> dict[str, Any]:
    """The whole-run fit (classical and weighted), each phase's fit, both tests, every fit's recipe, and the
    schedule's gain over the one recipe (reward points per member-round) by the phases' own fits and cross-fitted."""
    probe = read_probe(source)
    runs, samples = probe["runs"], probe["samples"]
    bounds = phase_bounds(len(runs[0]), phases)
    whole = op_effects(*samples)
    weighted = op_effects(*samples, weights=round_weights(samples, whole, len(runs[0])))
    fits = phase_fits(runs, phases)
    one = np.array(recipe_list(whole))
    gain = float(np.mean([fit["effect"] @ (np.array(recipe_list(fit)) - one) for fit in fits]))
    as_lists = {"effect": lambda f: f["effect"].tolist(), "se": lambda f: f["se"].tolist(), "recipe": recipe_list}
    return {"tag": tag, "probe": source, "runs": len(runs), "rounds": len(runs[0]), "ops": list(OPS),
            "whole": {k: get(whole) for k, get in as_lists.items()},
            "weighted": {k: get(weighted) for k, get in as_lists.items()},
            "phases": [{"rounds": [start + 1, stop], **{k: get(fit) for k, get in as_lists.items()}}
                       for (start, stop), fit in zip(bounds, fits, strict=True)],
            "equal_effects": equality_test(fits), "one_direction": scale_test(fits),
            "schedule_gain": gain, "schedule_gain_heldout": heldout_gain(runs, phases),
            "reward_spread": round_spread(runs)}


def fmt_p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def edits(recipe: list[int], base: list[int]) -> str:
    """``recipe_edits`` of two recipes kept as lists in OPS order."""
    return recipe_edits(dict(zip(OPS, recipe, strict=True)), dict(zip(OPS, base, strict=True)))


def report(data: dict[str, Any]) -> str:
    phases, whole = data["phases"], data["whole"]
    name, figure, _ = files(data.get("tag"))
    header = ["op", "whole run", "weighted"] + [f"rounds {p['rounds'][0]}-{p['rounds'][1]}" for p in phases]
    rows = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    fits = [whole, data["weighted"], *phases]
    rows += [f"| {op} | " + " | ".join(f"{fit['effect'][i]:+.2f} ± {fit['se'][i]:.2f}" for fit in fits) + " |"
             for i, op in enumerate(data["ops"])]
    equal, one = data["equal_effects"], data["one_direction"]
    scales = ", ".join(f"{s:.2f}" for s in one["scales"])
    spread = ", ".join(f"{s:.2f}" for s in data["reward_spread"])
    recipes = [f"- the weighted fit: {edits(data['weighted']['recipe'], whole['recipe'])}"]
    recipes += [f"- rounds {p['rounds'][0]}-{p['rounds'][1]}: {edits(p['recipe'], whole['recipe'])}" for p in phases]
    return (f"Written by `python -m benchmarks.probe_phases` (docs/{name}) from `{data['probe']}`: {data['runs']} "
            f"`probe` runs of {data['rounds']} rounds, no new training. Effect per level in reward points "
            f"(± standard error); \"weighted\" is the whole-run fit with each round weighted by its inverse residual "
            f"variance.\n\n" + "\n".join(rows) + "\n\n"
            f"- Same effects in every phase: chi-square {equal['chi2']:.1f} on {equal['dof']} degrees of freedom, "
            f"p = {fmt_p(equal['p'])}.\n"
            f"- One direction, a scale per phase (scales {scales}): chi-square {one['chi2']:.1f} on {one['dof']} "
            f"degrees of freedom, p = {fmt_p(one['p'])}.\n"
            f"- Reward spread (standard deviation of member-round rewards) by round: {spread}.\n\n"
            f"`fitted`'s rule applied to each fit, against the whole-run recipe:\n\n" + "\n".join(recipes) + "\n\n"
            f"The phase-wise schedule's gain over the one recipe, in reward points per member-round: "
            f"{data['schedule_gain']:+.2f} by the phases' own fits (optimistic: chosen and scored on the same "
            f"rewards); cross-fitted (each run's rewards scoring the recipes the other runs chose; mean [95% CI] over "
            f"held-out runs): {fmt_mean_ci(data['schedule_gain_heldout'])}, per run "
            + ", ".join(f"{g:+.2f}" for g in data["schedule_gain_heldout"]) + ".\n\n"
            f"![probe phases]({figure})\n")


def plot(data: dict[str, Any], out: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    fits = [("whole run", data["whole"])] + [(f"rounds {p['rounds'][0]}-{p['rounds'][1]}", p) for p in data["phases"]]
    x = np.arange(len(data["ops"]))
    width = 0.8 / len(fits)
    for k, (label, fit) in enumerate(fits):
        left.errorbar(x + (k - (len(fits) - 1) / 2) * width, fit["effect"], yerr=1.96 * np.array(fit["se"]),
                      fmt="o", markersize=3, capsize=2, label=label)
    left.axhline(0, color="grey", linewidth=0.8)
    left.set_xticks(x, data["ops"], rotation=60, fontsize=7)
    left.set(ylabel="effect per level (reward points, 95% CI)")
    left.legend(fontsize=7)
    rounds = np.arange(1, data["rounds"] + 1)
    right.plot(rounds, data["reward_spread"], marker="o", markersize=3)
    right.set(xlabel="round", ylabel="reward spread (points)")
    save_figure(fig, files(data.get("tag"))[1], folder=out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", default=str(PROBE_FILE), help=f"the probe study (default {PROBE_FILE})")
    parser.add_argument("--phases", type=int, default=2, help="equal blocks of rounds fitted apart (default 2)")
    parser.add_argument("--out", type=Path, default=DOCS,
                        help="folder for the JSON and plot (default docs/, which also updates RESULTS.md)")
    parser.add_argument("--tag", help="name this reading: probe_phases_TAG.json, its plot and section")
    parser.add_argument("--report", action="store_true", help="only re-render the plot and section from the JSON")
    args = parser.parse_args(argv)
    name, _, section = files(args.tag)
    measure_it = None if args.report else (lambda: measure(args.probe, args.phases, args.tag))
    publish_study(name, args.out, measure_it, plot=plot, report=report, section=section)


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""How long does one round's choice last? Op effects on the value in the round and k rounds later, from stored runs.

    python -m benchmarks.reward_horizon [--probes FILE ...] [--studies FILE ...] [--lags 3] [--out docs] [--report]

A population member's reward for a round is its gain of the reward-subset value during that round (less the round's
mean). A learner inside the run follows that one-round signal; ``fitted`` (``agents.fitted``) is built from it. Both
ask, in effect, what a choice does to the value at once. The final model is the value at the run's end, so what
matters is how long a choice's effect lasts. Stored runs answer that without training: the sum of a member's rewards
over rounds t..t+k is its value's change from before round t to k rounds after it, and the member's levels in the
later rounds are drawn independently of round t's, so regressing that sum on round t's levels (one intercept per run
and round, as ``fitted``'s fit) estimates what round t's choice still does k rounds later. Members whose model an
exploit replaced within those rounds are left out (``agents.fitted.overwritten`` replays the exploits).

- ``--probes``: ``probe`` studies (every op's level uniform per member and round): each op's effect per level at
  lags 0..``--lags``, and the recipe ``fitted``'s rule would build from each lag's fit.
- ``--studies``: studies where ``benchmarks.learning.FITTED_CHOOSERS`` ran: members one step below the recipe (+1)
  against members at it (+2) in the same round, at each lag, in each half of the run (``learning.offset_gaps``).

Writes docs/reward_horizon.json, docs/reward_horizon.png and a RESULTS.md section (``--report`` re-renders them from
the JSON). A reading of finished runs: nothing is trained.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de.augment import OPS  # noqa: E402
from adaptive_de.errors import UserError, run_cli  # noqa: E402
from agents.fitted import BASE_OFFSET, op_effects, probe_samples, read_probe  # noqa: E402
from agents.population import strength_levels  # noqa: E402
from benchmarks.learning import FITTED_CHOOSERS, gap_summary, offset_gaps, study_exploit  # noqa: E402
from benchmarks.probe_phases import edits, recipe_list  # noqa: E402
from benchmarks.runs import DOCS, publish_study, save_figure  # noqa: E402

NAME = "reward_horizon.json"
SECTION = "How long does one round's choice last? Effects on the value k rounds later (issue 12 reading)"
PROBES = ("docs/learning_probe16.json", "docs/learning_probe_scratch16.json", "docs/learning_probe_scratch24.json")
STUDIES = ("docs/learning_learner_scratch24.json", "docs/learning_learner_often24.json",
           "docs/learning_learner_bandit24.json")
SHOWN = ("erase", "hue")  # the ops whose one-round effects carry ``fitted``'s edits on every probe


def read_study(source: str) -> dict[str, Any]:
    """A ``benchmarks.learning`` study file; a UserError where it is missing or not one."""
    try:
        data = json.loads(Path(source).read_text())
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or not {"schedules", "preset", "env"} <= data.keys():
        raise UserError(f"{source} is not a benchmarks.learning study file")
    return data


def probe_horizon(source: str, lags: int) -> dict[str, Any]:
    """For one probe study: per lag 0..``lags``, the samples used, each op's effect and standard error (OPS order) and
    the recipe ``fitted``'s rule builds from that fit (OPS order)."""
    runs = read_probe(source)["runs"]
    exploit = study_exploit(read_study(source))
    fits = []
    for lag in range(lags + 1):
        samples = probe_samples(runs, lag, exploit)
        fit = op_effects(*samples)
        fits.append({"lag": lag, "samples": len(samples[1]), "effect": fit["effect"].tolist(),
                     "se": fit["se"].tolist(), "recipe": recipe_list(fit)})
    return {"probe": source, "runs": len(runs), "rounds": len(runs[0]), "lags": fits}


def offset_horizon(sources: list[str], lags: int) -> dict[str, Any]:
    """``learning.offset_gaps`` pooled over the studies, per lag, in each half of their runs (which must share one
    length)."""
    studies = [read_study(source) for source in sources]
    lengths = {len(runs[0]) for data in studies for m, runs in data["schedules"].items() if m in FITTED_CHOOSERS}
    if len(lengths) != 1:
        raise UserError(f"the studies' fitted choosers ran runs of {sorted(lengths) or 'no'} rounds; they must share "
                        "one length")
    half = lengths.pop() // 2
    rows = []
    for lag in range(lags + 1):
        gaps = [gap for data in studies for gap in offset_gaps(data, lag)]
        rows.append({"lag": lag, "early": gap_summary([g for t, g in gaps if t < half]),
                     "late": gap_summary([g for t, g in gaps if t >= half])})
    return {"studies": sources, "half": half, "lags": rows}


def measure(probes: list[str], studies: list[str], lags: int) -> dict[str, Any]:
    if lags < 1:
        raise UserError(f"--lags must be at least 1, not {lags}")
    base = strength_levels(BASE_OFFSET)
    return {"ops": list(OPS), "base": [base[op] for op in OPS],
            "probes": [probe_horizon(source, lags) for source in probes],
            "offsets": offset_horizon(studies, lags) if studies else None}


def fmt(row: dict[str, float]) -> str:
    return f"{row['mean']:+.2f} ± {row['se']:.2f} ({row['rounds']})"


def report(data: dict[str, Any]) -> str:
    text = (f"Written by `python -m benchmarks.reward_horizon` (docs/{NAME}) from stored study files, no new "
            "training. Lag k: the effect of a member's round-t choice on its reward-subset value k rounds after "
            "round t (the sum of its rewards over rounds t..t+k regressed on round t's levels, one intercept per run "
            "and round; members an exploit replaced in between left out). Reward points per level, ± standard "
            "error.\n")
    for probe in data["probes"]:
        fits = probe["lags"]
        header = ["op"] + [f"lag {f['lag']} ({f['samples']})" for f in fits]
        rows = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        rows += [f"| {op} | " + " | ".join(f"{f['effect'][i]:+.2f} ± {f['se'][i]:.2f}" for f in fits) + " |"
                 for i, op in enumerate(data["ops"])]
        recipes = "; ".join(f"lag {f['lag']}: {edits(f['recipe'], data['base'])}" for f in fits)
        text += (f"\n### `{probe['probe']}` ({probe['runs']} probe runs of {probe['rounds']} rounds)\n\n"
                 + "\n".join(rows) + f"\n\n`fitted`'s rule on each lag's fit, edits of `strength+2`: {recipes}.\n")
    offsets = data["offsets"]
    if offsets:
        half = offsets["half"]
        text += ("\n### Members one step below the recipe (+1) minus members at it (+2), same round\n\n"
                 f"From {', '.join(f'`{s}`' for s in offsets['studies'])}, every round where both offsets were "
                 "drawn; mean ± standard error over rounds (rounds).\n\n"
                 f"| lag | rounds 1-{half} | rounds {half + 1}-{2 * half} |\n|---|---|---|\n"
                 + "".join(f"| {r['lag']} | {fmt(r['early'])} | {fmt(r['late'])} |\n" for r in offsets["lags"]))
    return text + "\n![reward horizon](reward_horizon.png)\n"


def plot(data: dict[str, Any], out: Path) -> None:
    panels = len(SHOWN) + (1 if data["offsets"] else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 3.4), sharey=True)
    for ax, op in zip(axes, SHOWN, strict=False):
        i = data["ops"].index(op)
        for probe in data["probes"]:
            lag, name = [f["lag"] for f in probe["lags"]], Path(probe["probe"]).stem.removeprefix("learning_")
            ax.errorbar(lag, [f["effect"][i] for f in probe["lags"]], capsize=2, marker="o", markersize=3,
                        yerr=[1.96 * f["se"][i] for f in probe["lags"]], label=name)
        ax.set(title=f"{op}: effect per level", xlabel="lag (rounds after the choice)",
               ylabel="reward points (95% CI)")
        ax.legend(fontsize=7)
    if data["offsets"]:
        ax = axes[-1]
        rows = data["offsets"]["lags"]
        for part in ("early", "late"):
            ax.errorbar([r["lag"] for r in rows], [r[part]["mean"] for r in rows], capsize=2, marker="o",
                        markersize=3, yerr=[1.96 * r[part]["se"] for r in rows], label=f"{part} half")
        ax.set(title="+1 minus +2 (the recipe)", xlabel="lag (rounds after the choice)")
        ax.legend(fontsize=7)
    for ax in axes:
        ax.axhline(0, color="grey", linewidth=0.8)
    save_figure(fig, "reward_horizon.png", folder=out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", nargs="+", default=list(PROBES), help="probe study files")
    parser.add_argument("--studies", nargs="*", default=list(STUDIES),
                        help="study files where fitted choosers ran (none: skip the offset reading)")
    parser.add_argument("--lags", type=int, default=3, help="the longest lag, in rounds (default 3)")
    parser.add_argument("--out", type=Path, default=DOCS,
                        help="folder for the JSON and plot (default docs/, which also updates RESULTS.md)")
    parser.add_argument("--report", action="store_true", help=f"only re-render the plot and section from OUT/{NAME}")
    args = parser.parse_args(argv)
    publish_study(NAME, args.out, None if args.report else lambda: measure(args.probes, args.studies, args.lags),
                  plot=plot, report=report, section=SECTION)


if __name__ == "__main__":
    sys.exit(run_cli(main))

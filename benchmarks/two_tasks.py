"""Two tasks, one recipe for both: the learners against every fixed recipe chosen before the task is known.

    python -m benchmarks.two_tasks [--tasks MAIN NOSHIFT] [--tag T] [--out docs] [--report]

Reads two side studies run by ``benchmarks.learning``, one per task: by default the ones docs/LEARNING.md's
two-task plan names, ``learning_cross_main.json`` (the main task) and ``learning_cross_noshift.json`` (the task
without shift), each merged with its task's flat study; ``--tasks`` names others (a confirmation on fresh seeds),
and ``--tag T`` then keeps their results apart (``learning_two_tasks_T.json``, its plot and RESULTS section).
A method's two-task score is the mean of its two task means. For a learner L and a non-learning method M,
the two-task gap is the mean of L - M's mean paired gap on each task (paired by seed within a task; the tasks'
seeds differ, so nothing pairs across them), with a 95% t-interval from the two tasks' independent sampling
variances and Welch-Satterthwaite degrees of freedom, rounded down so that the interval errs wide. Writes the
results file, a plot and a RESULTS section.
This is a benchmark of our own beside issue 12's one-task target, not a re-test of it.
"""
from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de.errors import CliParser, UserError, run_cli  # noqa: E402
from benchmarks.learning import LEARNERS, NON_LEARNING, meets, read_study, study_file  # noqa: E402
from benchmarks.runs import DOCS, T975, fmt_gap, paired, publish_study, save_figure, tagged_files  # noqa: E402

TASKS = {"main task": "cross_main", "without shift": "cross_noshift"}  # task -> its side study's tag
SECTION = "Two tasks, one recipe for both (issue 12, a benchmark of our own)"
TARGET = 1.0


def two_task_gap(per_task: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean over tasks of per-task paired gaps (``runs.paired`` dicts, each of two or more seeds), with its
    95% t-interval: the tasks are independent samples, so the mean's variance is the sum of each task's
    variance of the mean over the number of tasks squared, with Welch-Satterthwaite degrees of freedom."""
    means = [statistics.fmean(gap["gaps"]) for gap in per_task]
    variances = [statistics.variance(gap["gaps"]) / len(gap["gaps"]) for gap in per_task]
    mean = statistics.fmean(means)
    total = sum(variances)
    if total == 0:  # every seed agrees on every task: no spread to carry
        df = float(sum(len(gap["gaps"]) - 1 for gap in per_task))
    else:
        df = total ** 2 / sum(v ** 2 / (len(gap["gaps"]) - 1) for v, gap in zip(variances, per_task, strict=True))
    half = T975.get(math.floor(df), 1.96) * math.sqrt(total) / len(per_task)
    return {"per_task": means, "mean": mean, "ci95": [mean - half, mean + half], "df": df}


def files(tag: str | None) -> tuple[str, str, str]:
    """The results file, plot and RESULTS section of the analysis tagged ``tag`` (None: the plan's own)."""
    return tagged_files("learning_two_tasks", SECTION, tag)


def read_tasks(out: Path, tags: dict[str, str] = TASKS) -> dict[str, dict[str, Any]]:
    """Each task's side study (``tags``: task -> its study's tag), checked to share the preset and sizes (only
    the data may differ)."""
    studies = {task: read_study(out, tag) for task, tag in tags.items()}
    designs = {(s["preset"], tuple(sorted((k, v) for k, v in s["env"].items() if k != "data")))
               for s in studies.values()}
    if len(designs) > 1:
        raise UserError(f"the two tasks' studies ran different sizes: {sorted(designs)}")
    return studies


def analyse(studies: dict[str, dict[str, Any]], tags: dict[str, str] = TASKS, tag: str | None = None) -> dict[str, Any]:
    """Per task and over both (``studies`` as ``read_tasks(out, tags)`` gives them): every method's test mean F1
    (points), the best fixed recipe by its two-task score, and every learner's two-task gap to every non-learning
    method. ``tag`` names the analysis (see ``files``)."""
    methods = [m for m in next(iter(studies.values()))["methods"] if all(m in s["methods"] for s in studies.values())]
    scores = {m: [100 * statistics.fmean(s["methods"][m]["test_mean_f1"]) for s in studies.values()] for m in methods}
    fixed = [m for m in NON_LEARNING if m in scores]
    learners = [m for m in LEARNERS if m in scores]
    if not fixed or not learners:
        raise UserError(f"the two tasks share no learner and non-learning method (shared: {', '.join(methods)})")
    two_task_score = {m: statistics.fmean(v) for m, v in scores.items()}
    best = max(fixed, key=two_task_score.__getitem__)
    gaps = {learner: {m: two_task_gap([paired(s["methods"][learner]["test_mean_f1"], s["methods"][m]["test_mean_f1"])
                                       for s in studies.values()]) for m in fixed} for learner in learners}
    return {"tag": tag, "tasks": {task: {"study": study_file(tags[task]), "seeds": s["seeds"], "env": s["env"],
                             "cpu": s.get("machine", {}).get("cpu")} for task, s in studies.items()},
            "scores": scores, "two_task_score": two_task_score,
            "best_fixed_recipe": best, "gaps": gaps}


def verdict(gap: dict[str, Any]) -> str:
    return "met" if meets(gap, TARGET) else "NOT met"


def report(data: dict[str, Any]) -> str:
    tasks = list(data["tasks"])
    name, figure, _ = files(data.get("tag"))
    lines = [f"Written by `python -m benchmarks.two_tasks` ({name}) from "
             + " and ".join(f"{t} ({v['study']}, seeds {v['seeds']}, on {v['cpu']})" for t, v in data["tasks"].items())
             + ". A method's two-task score is the mean of its task means; a learner's gap to a fixed method is the"
             " mean of its per-task paired gaps, with a 95% t-interval from the two tasks' independent variances"
             " (Welch-Satterthwaite degrees of freedom, rounded down). Not issue 12's one-task target.", "",
             "| method | " + " | ".join(tasks) + " | two-task score |", "|---|" + "---|" * (len(tasks) + 1)]
    for m, per_task in sorted(data["scores"].items(), key=lambda kv: -data["two_task_score"][kv[0]]):
        lines.append(f"| {m} | " + " | ".join(f"{v:.2f}" for v in per_task) + f" | {data['two_task_score'][m]:.2f} |")
    best = data["best_fixed_recipe"]
    lines += ["", f"Two-task gaps, points (mean [95% CI] (per task: {', '.join(tasks)})):"]
    for learner, gaps in data["gaps"].items():
        gap = gaps[best]
        lines.append(f"- `{learner}` vs the best fixed recipe `{best}` (target >= +{TARGET:g}, interval above 0): "
                     f"**{fmt_two(gap)}**: {verdict(gap)}")
        lines.append("  - vs every fixed recipe: " + "; ".join(f"`{m}` {fmt_two(g)}" for m, g in gaps.items()))
    return "\n".join(lines) + f"\n\n![two tasks]({figure})\n"


def fmt_two(gap: dict[str, Any]) -> str:
    return fmt_gap({"mean": gap["mean"], "ci95": gap["ci95"], "gaps": gap["per_task"]}, per="task")


def plot(data: dict[str, Any], out: Path) -> None:
    learners = list(data["gaps"])
    fixed = sorted(next(iter(data["gaps"].values())), key=lambda m: data["two_task_score"][m])
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(fixed) + 1.5))
    for i, learner in enumerate(learners):
        offset = (i - (len(learners) - 1) / 2) * 0.25
        gaps = [data["gaps"][learner][m] for m in fixed]
        y = [k + offset for k in range(len(fixed))]
        ax.errorbar([g["mean"] for g in gaps], y, xerr=[[g["mean"] - g["ci95"][0] for g in gaps],
                                                      [g["ci95"][1] - g["mean"] for g in gaps]],
                    fmt="o", capsize=3, label=learner)
    ax.axvline(0, color="grey", lw=0.8)
    ax.axvline(TARGET, color="grey", lw=0.8, ls="--")
    ax.set_yticks(range(len(fixed)), fixed)
    ax.set_xlabel("learner - fixed recipe, mean of the two tasks' paired gaps (test mean-F1 points, 95% CI)")
    ax.set_title("One recipe for both tasks: the learners' two-task gaps", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    save_figure(fig, files(data.get("tag"))[1], folder=out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="where the two studies are and the results go")
    parser.add_argument("--tasks", nargs=2, metavar=("MAIN", "NOSHIFT"), default=list(TASKS.values()),
                        help="the tags of the two tasks' side studies (default: the two-task plan's)")
    parser.add_argument("--tag", help="name this analysis: learning_two_tasks_TAG.json, its plot and section")
    parser.add_argument("--report", action="store_true", help="re-render from the results file instead of the studies")
    args = parser.parse_args(argv)
    tags = dict(zip(TASKS, args.tasks, strict=True))
    if tags != TASKS and not args.tag:
        raise UserError("--tasks other than the plan's need a --tag, so their results do not overwrite its own")
    name, _, section = files(args.tag)
    measure = None if args.report else (lambda: analyse(read_tasks(args.out, tags), tags, args.tag))
    publish_study(name, args.out, measure, plot=plot, report=report, section=section)


if __name__ == "__main__":
    sys.exit(run_cli(main))

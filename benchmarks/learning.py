"""Learning-quality study: does the agent beat fixed augmentation on equal inner-training budget?

    python -m benchmarks.learning [--seeds 0 1 2] [--search-runs 8] [--preset cpu] [--env K=V ...] [--jobs 2]
                                  [--variants default menu ...] [--out docs] [--tag T] [--reuse] [--quick]

Per seed, as independent runs of ``python -m adaptive_de.run`` (``--jobs`` of them at once):
``best_fixed`` is searched first (one episode of each constant ``fixed:<levels>`` policy of a small
grid, the best final val-subset score wins), then the baselines (``none``, ``random``,
``randaugment``, ``trivialaugment``, ``best_fixed``) train one episode each; each PPO variant and
A2C train on ``search_runs`` episodes of agent experience (the search compute, in units of one final
training run), then run one deterministic episode. Every final model is scored on the test split.

Writes ``OUT/learning.json`` and the plots ``OUT/learning_{methods,returns,levels}.png`` (methods:
each one's gap to the best baseline, paired by seed), or with ``--tag T`` a side study's
``OUT/learning_T.json`` (other env options via ``--env K=V``, another budget, another device);
with ``--out docs`` also the RESULTS.md section: the main study, then every side study.
``oracle_matched``, the headroom study's hand-made policy that knows the test nuisances, is a
reference row, not a baseline: the most a perfect search could gain.
``--quick`` runs the ``smoke`` preset with one seed into ``runs/learning-quick/``.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de import run  # noqa: E402
from adaptive_de.augment import OPS  # noqa: E402
from adaptive_de.config import parse_kv, to_yaml  # noqa: E402
from adaptive_de.errors import run_cli  # noqa: E402
from agents import agent_class  # noqa: E402
from benchmarks.headroom import MATCHED_LEVELS  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.runs import (  # noqa: E402
    DOCS,
    apply_threads,
    fmt_pct,
    map_runs,
    mean_std,
    save_figure,
    study_parser,
    update_results_section,
    write_json,
)

BASELINES = ("none", "random", "randaugment", "trivialaugment")
NON_LEARNING = (*BASELINES, "best_fixed")  # what the agents are measured against
# Candidate constant policies for best_fixed (levels in OPS order, then the sampling mode).
GRID = {
    "geometric": [3, 3, 2, 2, 0, 4] + [0] * 10 + [0],
    "photometric": [0] * 6 + [3, 3, 1, 2, 2, 0, 2, 2, 0, 0] + [0],
    "geo+photo": [3, 3, 2, 2, 0, 4, 3, 3, 1, 2, 2, 0, 2, 2, 0, 2] + [0],
    "all-2": [2] * 16 + [0],
}
# The agent changes the study can try (name -> agent and its hyper-parameter overrides); "default" is
# `--agent ppo` as shipped. Each one answers a question the default run raises:
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"agent": "ppo"},
    # does the policy move at all in the few updates 8 episodes allow?
    "lr3e-3": {"agent": "ppo", "agent_kw": {"learning_rate": 3e-3}},
    # one update per episode instead of per two: twice the updates on the same experience
    "nsteps6": {"agent": "ppo", "agent_kw": {"n_steps": 6, "batch_size": 6}},
    # coarser actions: 14 named policies instead of 5^16 x 4 level vectors
    "menu": {"agent": "ppo_menu"},
    "menu-lr3e-3": {"agent": "ppo_menu", "agent_kw": {"learning_rate": 3e-3}},
}
SECTION = "Learning quality: agent vs fixed augmentation (issue 7)"
# Not a baseline: the hand-made policy of benchmarks.headroom, which knows the test split's nuisances.
# It shows how much a perfect search could gain over best_fixed within one episode.
ORACLE = "oracle_matched"


@dataclass(frozen=True)
class Study:
    """What every run of one study shares: the env (a preset and option overrides), the agents' budget, the folder."""

    preset: str
    env: dict[str, Any]
    timesteps: int  # agent env steps of a learner's training
    logdir: Path
    reuse: bool  # reuse the finished runs an earlier study left in logdir


def fixed_spec(action: list[int]) -> str:
    """The ``fixed:`` agent spec of an env action (16 levels, then the sampling mode's index)."""
    from envs import SAMPLING_MODES
    return "fixed:" + ",".join(map(str, action[:-1])) + "," + list(SAMPLING_MODES)[action[-1]]


def search_best_fixed(study: Study, seed: int) -> tuple[str, dict[str, float]]:
    """One episode per grid entry; the best final val-subset mean F1 wins (val only: no test peeking)."""
    from envs import FaceParsingAugmentEnv

    env = FaceParsingAugmentEnv(study.preset, **{**study.env, "seed": seed})
    scores = {}
    for name, levels in GRID.items():
        env.reset(seed=seed)
        for _ in range(env.rounds):
            *_, info = env.step(np.array(levels))
        scores[name] = info["val_mean_f1"]
    best = max(scores, key=scores.get)
    return fixed_spec(GRID[best]), scores


def agent_run(study: Study, name: str, agent: str, seed: int, compare: list[str],
              agent_kw: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``adaptive_de.run`` run (or, with ``reuse``, the results an earlier one left); its results and episodes."""
    run_dir = study.logdir / name
    if not (study.reuse and (run_dir / "results.json").exists()):
        if run_dir.exists():
            shutil.rmtree(run_dir)  # a stale or killed run of this study
        config = study.logdir / f"{name}.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(to_yaml({"agent_kw": agent_kw or {}, "env": study.env}))
        timesteps = study.timesteps if agent_class(agent)[0].learns else 1
        argv = ["--agent", agent, "--preset", study.preset, "--seed", str(seed), "--timesteps", str(timesteps),
                "--compare", ",".join(compare), "--logdir", str(study.logdir), "--name", name, "--config", str(config)]
        if run.main(argv) != 0:
            raise SystemExit(f"run {name} failed")
    return {"rows": json.loads((run_dir / "results.json").read_text())["methods"],
            "episodes": [(e["timesteps"], e["return"]) for e in run.read_episodes(run_dir / run.EPISODES)]}


def baselines_task(study: Study, seed: int) -> dict[str, Any]:
    """``best_fixed``'s grid search, then one episode of each baseline from the seed's start."""
    grid_file = study.logdir / f"grid-seed{seed}.json"
    if study.reuse and grid_file.exists():
        grid = json.loads(grid_file.read_text())
    else:
        best, scores = search_best_fixed(study, seed)
        grid = {"best": best, "val_mean_f1": scores}
        write_json(grid_file.name, grid, folder=study.logdir)
    rows = agent_run(study, f"baselines-seed{seed}", "none", seed, [*BASELINES[1:], grid["best"]])["rows"]
    rows["best_fixed"] = rows.pop(grid["best"])
    return {"seed": seed, "rows": rows, "grid": grid}


def agent_task(study: Study, method: str, seed: int, variant: dict[str, Any]) -> dict[str, Any]:
    """A learner (``a2c`` or ``ppo[VARIANT]``) trained on ``timesteps`` env steps, then its deterministic episode."""
    name = method.replace("[", "-").rstrip("]") + f"-seed{seed}"
    result = agent_run(study, name, variant["agent"], seed, [], variant.get("agent_kw"))
    row = result["rows"][variant["agent"]]
    return {"seed": seed, "rows": {method: row}, "episodes": result["episodes"]}


def oracle_task(study: Study, seed: int) -> dict[str, Any]:
    """One episode of the hand-matched policy (levels at the env's p = 0.5, like the headroom study's)."""
    spec = fixed_spec([MATCHED_LEVELS.get(op, 0) for op in OPS] + [0])
    rows = agent_run(study, f"oracle-seed{seed}", spec, seed, [])["rows"]
    return {"seed": seed, "rows": {ORACLE: rows[spec]}}


def run_task(study: Study, kind: str, seed: int, variant: dict[str, Any] | None = None) -> dict[str, Any]:
    """One task of the study: ``baselines``, the oracle, or a learner (``kind`` its result key, with its variant)."""
    if kind == "baselines":
        return baselines_task(study, seed)
    if kind == ORACLE:
        return oracle_task(study, seed)
    return agent_task(study, kind, seed, variant)


def ppo_variants(names: list[str]) -> dict[str, dict[str, Any]]:
    """Result key -> variant: ``ppo`` for the default variant, ``ppo[NAME]`` for the others."""
    return {"ppo" if v == "default" else f"ppo[{v}]": VARIANTS[v] for v in names}


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--search-runs", type=int, default=8, help="agent training episodes (search compute)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--env", nargs="*", metavar="K=V",
                        help="env options over the preset's, e.g. steps_per_round=50")
    parser.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS),
                        help="PPO variants to train (default: ppo as shipped)")
    parser.add_argument("--no-a2c", action="store_true", help="skip A2C")
    parser.add_argument("--logdir", default="runs/learning")
    parser.add_argument("--out", default=None, help="folder of the results and plots (default docs)")
    parser.add_argument("--tag", help="write learning_TAG.json (no plots): a side study the RESULTS section lists "
                                      "after the main one")
    parser.add_argument("--reuse", action="store_true", help="reuse the finished runs an earlier study left in logdir")
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    preset, seeds = ("smoke", [0]) if args.quick else (args.preset, args.seeds)
    out = Path(args.out or ("runs/learning-quick" if args.quick else DOCS))
    from adaptive_de.presets import EnvConfig
    env = parse_kv(args.env)
    env_config = EnvConfig.from_preset(preset, **env)
    study = Study(preset, env, args.search_runs * env_config.rounds,
                  Path("runs/learning-quick/runs" if args.quick else args.logdir), args.reuse)
    variants = ppo_variants(args.variants)
    learners = {**variants, **({} if args.no_a2c else {"a2c": {"agent": "a2c"}})}
    # learners first: they are the longest tasks, so the pool's last tasks are short ones
    tasks = [(study, kind, seed, learners.get(kind)) for kind in [*learners, "baselines", ORACLE] for seed in seeds]
    results = map_runs(run_task, tasks, args.jobs)

    methods: dict[str, dict[str, list[float]]] = {}
    returns: dict[str, list] = {}
    levels: dict[str, list] = {}
    grids = {}
    for result in sorted(results, key=lambda r: r["seed"]):
        for method, row in result["rows"].items():
            m = methods.setdefault(method, {"test_mean_f1": [], "test_fp_rate": []})
            m["test_mean_f1"].append(row["test_mean_f1"])
            m["test_fp_rate"].append(row["test_fp_rate"])
            if method in learners:
                returns.setdefault(method, []).append(result["episodes"])
                levels.setdefault(method, []).append(row["levels"])
        if "grid" in result:
            grids[result["seed"]] = result["grid"]
    data = {"machine": machine_info(), "preset": preset, "env": env, "seeds": seeds,
            "inner_steps": env_config.episode_steps, "methods": methods, "search_cost_runs": args.search_runs,
            "best_fixed_search_cost_runs": len(GRID), "best_fixed_grid": grids,
            "variants": variants,
            "levels": levels, "reward_tuning": reward_tuning()}
    write_json(f"learning_{args.tag}.json" if args.tag else "learning.json", data, folder=out)
    if not args.tag:
        plot_methods(methods, out)
        plot(returns, levels, out)
    print(table(data))
    if out == DOCS and (DOCS / "learning.json").exists():
        update_results_section(SECTION, report())


def reward_tuning() -> dict[str, Any]:
    """The CE vs CE->REINFORCE comparison of ``benchmarks.rewards_study`` on the same synthetic benchmark."""
    study = DOCS / "rewards_study.json"
    if not study.exists():
        return {}
    arms = json.loads(study.read_text())["arms"]
    tuned = max((a for a in arms if a.startswith("ce_then_reinforce/rloo")),
                key=lambda a: mean_std(arms[a]["test_mean_f1"])[0])  # the best RLOO tuning variant
    return {"ce": arms["ce"]["test_mean_f1"], "ce_then_reinforce": arms[tuned]["test_mean_f1"],
            "ce_then_reinforce_arm": tuned}


def best_baseline(methods: dict[str, Any]) -> str:
    return max((m for m in methods if m in NON_LEARNING),
               key=lambda m: mean_std(methods[m]["test_mean_f1"])[0])


def table(data: dict[str, Any]) -> str:
    """The methods' test scores, and each learner's gap to the best non-learning baseline (mean of paired gaps)."""
    methods = data["methods"]
    best = best_baseline(methods)
    rows = ["| method | test mean F1 (%) | test FP rate (%) | vs best baseline (points) |", "|---|---|---|---|"]
    for name, m in methods.items():
        gap = ""
        if name not in NON_LEARNING:  # learners, and the oracle
            gaps = [100 * (a - b) for a, b in zip(m["test_mean_f1"], methods[best]["test_mean_f1"], strict=True)]
            gap = f"{np.mean(gaps):+.2f} (per seed: {', '.join(f'{g:+.1f}' for g in gaps)})"
        rows.append(f"| {name} | {fmt_pct(m['test_mean_f1'])} | {fmt_pct(m['test_fp_rate'])} | {gap} |")
    return "\n".join(rows)


def report() -> str:
    """The RESULTS.md section: the main study (docs/learning.json) with its plots, then each side study
    (docs/learning_*.json: other devices, env options, budgets)."""
    data = json.loads((DOCS / "learning.json").read_text())
    methods, best = data["methods"], best_baseline(data["methods"])
    gap = 100 * (mean_std(methods["ppo"]["test_mean_f1"])[0] - mean_std(methods[best]["test_mean_f1"])[0])
    body = (f"Written by `python -m benchmarks.learning`. {describe(data)} Mean ± std over seeds; the last column "
            f"pairs each method with the best non-learning baseline seed by seed.\n\n" + table(data)
            + f"\n\nPPO vs the best non-learning baseline (`{best}`): **{gap:+.2f}** mean-F1 points (target >= +1 "
            f"with <= 8 runs of search compute): {'met' if gap >= 1 else 'NOT met'}.\n\n"
            "![methods](learning_methods.png)\n\n![returns](learning_returns.png)\n\n"
            "![levels](learning_levels.png)\n")
    tuning = data.get("reward_tuning")
    if tuning:
        body += (f"\nReward tuning on the same benchmark (`benchmarks.rewards_study`; `reward_tuning` in the json): "
                 f"CE {fmt_pct(tuning['ce'])} vs CE→REINFORCE (`{tuning['ce_then_reinforce_arm']}`) "
                 f"{fmt_pct(tuning['ce_then_reinforce'])} test mean F1 (%).\n")
    for path in sorted(DOCS.glob("learning_*.json")):
        other = json.loads(path.read_text())
        body += f"\n### Side study `{path.name}`\n\n{describe(other)}\n\n" + table(other) + "\n"
    return body


def describe(data: dict[str, Any]) -> str:
    """One paragraph: where the study ran and what it trained."""
    env = data.get("env") or {}
    options = f" with {', '.join(f'`{k}={v}`' for k, v in env.items())}" if env else ""
    variants = "; ".join(f"`{name}`: {v['agent']}" + "".join(f", {k}={x}" for k, x in v.get("agent_kw", {}).items())
                         for name, v in data.get("variants", {}).items())
    return (f"On {device_name(data['machine'])}: preset `{data['preset']}`{options}, seeds {data['seeds']}. Every "
            f"final model trained one episode of {data['inner_steps']} inner steps from the same CE-pretrained start; "
            f"the agents trained on {data['search_cost_runs']} episodes; `best_fixed` was picked from "
            f"{data['best_fixed_search_cost_runs']} constant policies on the val subset. PPO variants: {variants}.")


def device_name(machine: dict[str, Any]) -> str:
    if machine["cuda_device"]:
        return f"{machine['cuda_device']} (the trainer on the GPU, bf16 autocast)"
    return f"{machine['cpu']} ({machine['cores']} cores, CPU)"


def plot_methods(methods: dict[str, dict[str, list[float]]], out: Path) -> None:
    """Each method's test mean F1 minus the best non-learning baseline's, paired by seed (seeds differ in their
    start model by more than methods differ, so the unpaired spread would hide the comparison)."""
    best = best_baseline(methods)
    names = [m for m in methods if m != best]
    gaps = [100 * (np.array(methods[m]["test_mean_f1"]) - np.array(methods[best]["test_mean_f1"])) for m in names]
    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(names), 4))
    colors = ["tab:green" if m == ORACLE else "tab:gray" if m in BASELINES else "tab:blue" for m in names]
    ax.bar(range(len(names)), [g.mean() for g in gaps], color=colors, alpha=0.6)
    for i, g in enumerate(gaps):
        ax.plot([i] * len(g), g, "k.", alpha=0.7)
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(1, color="tab:red", lw=0.8, ls="--", label="target: +1 point")
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax.set(ylabel=f"test mean F1 − {best} (points)",
           title="Paired by seed: bar = mean, dots = seeds (blue: learners, green: oracle)")
    ax.legend(fontsize=8)
    save_figure(fig, "learning_methods.png", folder=out)


def plot(returns: dict, levels: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for agent, per_seed in returns.items():
        for i, points in enumerate(per_seed):
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", alpha=0.7, label=f"{agent} seed {i}")
    ax.set(xlabel="agent env steps", ylabel="episode return (Δ val reward)", title="Agent training returns")
    ax.legend(fontsize=6)
    save_figure(fig, "learning_returns.png", folder=out)
    chosen = [lv for lv in levels.get("ppo", []) if lv and lv[0] is not None]
    if chosen:
        mean_levels = np.mean(np.array(chosen, dtype=float), axis=0)  # [rounds, ops], averaged over seeds
        fig, ax = plt.subplots(figsize=(8, 4))
        im = ax.imshow(mean_levels.T, aspect="auto", cmap="viridis", vmin=0, vmax=4)
        ax.set(yticks=range(len(OPS)), yticklabels=OPS, xlabel="round of the final episode",
               title="Levels PPO chooses (mean over seeds)")
        fig.colorbar(im, ax=ax, label="level")
        save_figure(fig, "learning_levels.png", folder=out)


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a bad --env option or preset: one error line, exit code 2

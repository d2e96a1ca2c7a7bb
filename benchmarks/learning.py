"""Learning-quality study: does the agent beat fixed augmentation on equal inner-training budget?

    python -m benchmarks.learning [--seeds 0 1 2] [--search-runs 8] [--preset cpu] [--quick]

Per seed: ``python -m adaptive_de.run`` trains PPO (and A2C) for ``search_runs`` episodes of agent
experience (the search compute, in units of one final training run), then runs one deterministic
episode of the agent and of each baseline from the same seed and scores the final models on the
test split. ``best_fixed`` is the best of a small grid of constant ``fixed:<levels>`` policies,
chosen by the final val-subset score of one episode each (its own search cost is reported too).
Writes docs/learning.json, docs/learning_returns.png, docs/learning_levels.png and a RESULTS.md
section; ``--quick`` runs the ``smoke`` preset with one seed as a smoke check.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de import run  # noqa: E402
from adaptive_de.augment import OPS  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.runs import (  # noqa: E402
    DOCS,
    apply_threads,
    fmt_pct,
    mean_std,
    save_figure,
    study_parser,
    update_results_section,
    write_json,
)

BASELINES = ("none", "random", "randaugment", "trivialaugment")
# Candidate constant policies for best_fixed (levels in OPS order, then the sampling mode).
GRID = {
    "geometric": [3, 3, 2, 2, 0, 4] + [0] * 10 + [0],
    "photometric": [0] * 6 + [3, 3, 1, 2, 2, 0, 2, 2, 0, 0] + [0],
    "geo+photo": [3, 3, 2, 2, 0, 4, 3, 3, 1, 2, 2, 0, 2, 2, 0, 2] + [0],
    "all-2": [2] * 16 + [0],
}


def fixed_spec(action: list[int]) -> str:
    """The ``fixed:`` agent spec of an env action (16 levels, then the sampling mode's index)."""
    from envs import SAMPLING_MODES
    return "fixed:" + ",".join(map(str, action[:-1])) + "," + list(SAMPLING_MODES)[action[-1]]


def search_best_fixed(preset: str, seed: int, overrides: dict) -> tuple[str, dict[str, float]]:
    """One episode per grid entry; the best final val-subset mean F1 wins (val only: no test peeking)."""
    from envs import FaceParsingAugmentEnv

    env = FaceParsingAugmentEnv(preset, seed=seed, **overrides)
    scores = {}
    for name, levels in GRID.items():
        env.reset(seed=seed)
        for _ in range(env.rounds):
            *_, info = env.step(np.array(levels))
        scores[name] = info["val_mean_f1"]
    best = max(scores, key=scores.get)
    return fixed_spec(GRID[best]), scores


def agent_run(agent: str, seed: int, preset: str, timesteps: int, compare: list[str], logdir: Path,
              overrides: list[str]) -> Path:
    name = f"{agent}-seed{seed}"
    argv = ["--agent", agent, "--preset", preset, "--seed", str(seed), "--timesteps", str(timesteps),
            "--compare", ",".join(compare), "--logdir", str(logdir), "--name", name, *overrides]
    if run.main(argv) != 0:
        raise SystemExit(f"run {name} failed")
    return logdir / name


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--search-runs", type=int, default=8, help="agent training episodes (search compute)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--logdir", default="runs/learning")
    args = parser.parse_args()
    apply_threads(args.threads)
    preset, seeds = ("smoke", [0]) if args.quick else (args.preset, args.seeds)
    from adaptive_de.presets import EnvConfig
    env_config = EnvConfig.from_preset(preset)
    timesteps = args.search_runs * env_config.rounds
    logdir = Path(args.logdir)

    methods: dict[str, dict[str, list[float]]] = {}
    returns, levels, grid_scores = {}, {}, {}
    for seed in seeds:
        best, grid_scores[seed] = search_best_fixed(preset, seed, {})
        for agent in ("ppo", "a2c"):
            compare = [*BASELINES, best] if agent == "ppo" else []
            run_dir = agent_run(agent, seed, preset, timesteps, compare, logdir, [])
            rows = json.loads((run_dir / "results.json").read_text())["methods"]
            names = {agent: agent, **({b: b for b in BASELINES} if agent == "ppo" else {}),
                     **({best: "best_fixed"} if agent == "ppo" else {})}
            for key, method in names.items():
                m = methods.setdefault(method, {"test_mean_f1": [], "test_fp_rate": []})
                m["test_mean_f1"].append(rows[key]["test_mean_f1"])
                m["test_fp_rate"].append(rows[key]["test_fp_rate"])
            episodes = run.read_episodes(run_dir / run.EPISODES)
            returns.setdefault(agent, []).append([(e["timesteps"], e["return"]) for e in episodes])
            levels.setdefault(agent, []).append(rows[agent]["levels"])
    if args.quick:
        print({k: v["test_mean_f1"] for k, v in methods.items()})
        return

    reward_tuning = {}
    study = DOCS / "rewards_study.json"
    if study.exists():  # the CE vs CE->REINFORCE comparison on the same benchmark (benchmarks.rewards_study)
        arms = json.loads(study.read_text())["arms"]
        tuned = max((a for a in arms if a.startswith("ce_then_reinforce/rloo")),
                    key=lambda a: mean_std(arms[a]["test_mean_f1"])[0])  # the best RLOO tuning variant
        reward_tuning = {"ce": arms["ce"]["test_mean_f1"], "ce_then_reinforce": arms[tuned]["test_mean_f1"],
                         "ce_then_reinforce_arm": tuned}
    write_json("learning.json", {"machine": machine_info(), "preset": preset, "seeds": seeds,
                                 "inner_steps": env_config.episode_steps, "methods": methods,
                                 "search_cost_runs": args.search_runs,
                                 "best_fixed_search_cost_runs": len(GRID), "best_fixed_grid_val": grid_scores,
                                 "reward_tuning": reward_tuning})
    plot(returns, levels)
    baseline_best = max((m for m in methods if m not in ("ppo", "a2c")), key=lambda m: mean_std(
        methods[m]["test_mean_f1"])[0])
    gap = 100 * (mean_std(methods["ppo"]["test_mean_f1"])[0] - mean_std(methods[baseline_best]["test_mean_f1"])[0])
    rows = ["| method | test mean F1 (%) | test FP rate (%) |", "|---|---|---|"]
    rows += [f"| {m} | {fmt_pct(v['test_mean_f1'])} | {fmt_pct(v['test_fp_rate'])} |" for m, v in methods.items()]
    body = (f"Written by `python -m benchmarks.learning`: preset `{preset}`, seeds {seeds}, every final model "
            f"trained one episode of {env_config.episode_steps} inner steps from the same CE-pretrained start; "
            f"agents trained on {args.search_runs} episodes ({timesteps} env steps); `best_fixed` picked from "
            f"{len(GRID)} constant policies on the val subset.\n\n" + "\n".join(rows)
            + f"\n\nPPO vs the best non-learning baseline (`{baseline_best}`): **{gap:+.2f}** mean-F1 points "
            f"(target >= +1 with <= 8 runs of search compute): {'met' if gap >= 1 else 'NOT met'}.\n\n"
            "![returns](learning_returns.png)\n\n![levels](learning_levels.png)\n")
    update_results_section("Learning quality: agent vs fixed augmentation (issue 7)", body)


def plot(returns: dict, levels: dict) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for agent, per_seed in returns.items():
        for i, points in enumerate(per_seed):
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", alpha=0.7, label=f"{agent} seed {i}")
    ax.set(xlabel="agent env steps", ylabel="episode return (Δ val reward)", title="Agent training returns")
    ax.legend(fontsize=7)
    save_figure(fig, "learning_returns.png")
    chosen = [lv for lv in levels.get("ppo", []) if lv and lv[0] is not None]
    if chosen:
        mean_levels = np.mean(np.array(chosen, dtype=float), axis=0)  # [rounds, ops], averaged over seeds
        fig, ax = plt.subplots(figsize=(8, 4))
        im = ax.imshow(mean_levels.T, aspect="auto", cmap="viridis", vmin=0, vmax=4)
        ax.set(yticks=range(len(OPS)), yticklabels=OPS, xlabel="round of the final episode",
               title="Levels PPO chooses (mean over seeds)")
        fig.colorbar(im, ax=ax, label="level")
        save_figure(fig, "learning_levels.png")


if __name__ == "__main__":
    main()

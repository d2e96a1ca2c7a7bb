"""Reward tuning study: cross-entropy vs REINFORCE on F1 - w*FP, from scratch and from a CE model.

    python -m benchmarks.rewards_study [--steps 1000] [--seeds 0 1 2] [--tune 0.1:0 1:1] [--jobs 2] [--quick]

On the shifted synthetic benchmark, ``tiny``, equal total steps, the same augmentation for every
arm (the hand-matched LevelPolicy of benchmarks.headroom): (a) CE, (b) REINFORCE from scratch,
(c) CE for ``tune_from`` of the steps, then REINFORCE with ``f1_fp`` for the rest, with the
``pair``, ``greedy`` and ``rloo`` baselines, for each ``--tune`` variant (learning-rate factor and
cross-entropy weight of the tuning phase). The (c) arms of a seed share their CE phase.
Target (issue 4): (c) beats (a) by >= 1 mean-F1 point. Also times a K=4 REINFORCE step against a CE
step on the same batch. Writes docs/rewards_study.json and a RESULTS.md section.
"""
from __future__ import annotations

import argparse
import time

import torch

from adaptive_de.config import TrainConfig
from adaptive_de.trainer import InnerTrainer
from benchmarks.headroom import matched_policy
from benchmarks.machine import machine_info
from benchmarks.runs import (
    apply_threads,
    fmt_pct,
    load_splits,
    map_runs,
    mean_std,
    study_parser,
    update_results_section,
    write_json,
)

BASELINES = ("pair", "greedy", "rloo")


def scores(trainer: InnerTrainer) -> dict:
    test = trainer.evaluate("test")
    return {"test_mean_f1": test["mean_f1"], "test_fp_rate": test["fp_rate"], "test_reward": test["reward"]}


def arm_name(baseline: str, lr_factor: float, ce_weight: float) -> str:
    return f"ce_then_reinforce/{baseline}@lr{lr_factor:g}+ce{ce_weight:g}"


def study_group(group: str, seed: int, steps: int, tune_kw: dict, variants: list[tuple[float, float]]) -> dict:
    """The arms of one seed that share a training run (module-level: ``--jobs`` workers call it).

    ``ce`` and ``reinforce_scratch`` are one run each; ``tuned`` trains the CE phase once, scores it
    (``ce_phase_only``: the MLE model the tuning starts from) and continues a copy of it under every
    (lr factor, CE weight) variant and baseline.
    """
    data, policy = load_splits("synth", splits=("train", "test")), matched_policy()
    base = TrainConfig(steps=steps, seed=seed, device="cpu", reward="f1_fp", reward_kw={"w": 0.3}, **tune_kw)
    if group != "tuned":
        trainer = InnerTrainer(base.replace(loss="ce" if group == "ce" else "reinforce"), data=data,
                               splits=tuple(data))
        trainer.train_round(policy, steps=steps)
        return {group: scores(trainer)}
    shared = InnerTrainer(base.replace(loss="ce_then_reinforce"), data=data, splits=tuple(data))
    shared.train_round(policy, steps=shared.switch_step)
    out = {"ce_phase_only": scores(shared)}
    state = shared.state_dict()
    for lr_factor, ce_weight in variants:
        for baseline in BASELINES:
            tuned = InnerTrainer(base.replace(loss="ce_then_reinforce", baseline=baseline, tune_lr_factor=lr_factor,
                                              ce_weight=ce_weight), data=data, splits=tuple(data))
            tuned.load_state_dict(state)
            tuned.train_round(policy, steps=steps - tuned.step)
            out[arm_name(baseline, lr_factor, ce_weight)] = scores(tuned)
    print(f"seed {seed} tuned: " + ", ".join(f"{k} {100 * v['test_mean_f1']:.2f}" for k, v in out.items()),
          flush=True)
    return out


def parse_variant(text: str) -> tuple[float, float]:
    try:
        lr_factor, ce_weight = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LR_FACTOR:CE_WEIGHT, e.g. 0.1:0, got {text!r}") from None
    return lr_factor, ce_weight


def step_time_ratio(data: dict, policy, reps: int = 20) -> dict:
    """Median time of a K=4 REINFORCE step over a CE step, same batches, same run (interleaved)."""
    trainers = {loss: InnerTrainer(TrainConfig(loss=loss, num_samples=4, device="cpu"), data=data,
                                   splits=("train",)) for loss in ("ce", "reinforce")}
    times: dict[str, list[float]] = {loss: [] for loss in trainers}
    for _ in range(reps + 3):
        for loss, trainer in trainers.items():
            start = time.perf_counter()
            trainer.train_round(policy, steps=1)
            times[loss].append(time.perf_counter() - start)
    med = {loss: sorted(t[3:])[len(t[3:]) // 2] for loss, t in times.items()}
    return {"ce_ms": 1000 * med["ce"], "reinforce_k4_ms": 1000 * med["reinforce"],
            "reinforce_step_ratio": med["reinforce"] / med["ce"]}


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tune-from", type=float, default=0.7)
    parser.add_argument("--tune", type=parse_variant, nargs="+", default=[(0.1, 0.0), (1.0, 1.0)],
                        metavar="LR_FACTOR:CE_WEIGHT",
                        help="tuning variants: learning-rate factor and cross-entropy weight of the REINFORCE "
                             "phase (default: 0.1:0, Pinto et al.'s low-lr pure tuning, and 1:1, CE plus reward)")
    parser.add_argument("--num-samples", type=int, default=4)
    parser.add_argument("--entropy-weight", type=float, default=0.0)
    args = parser.parse_args()
    apply_threads(args.threads)
    steps, seeds = (10, [0]) if args.quick else (args.steps, args.seeds)
    tune_kw = {"tune_from": args.tune_from, "num_samples": args.num_samples, "entropy_weight": args.entropy_weight}
    torch.manual_seed(0)
    policy = matched_policy()
    timing = step_time_ratio(load_splits("synth", splits=("train",)), policy, reps=3 if args.quick else 20)
    print(f"K=4 REINFORCE step / CE step: {timing['reinforce_step_ratio']:.2f} "
          f"({timing['reinforce_k4_ms']:.0f} ms / {timing['ce_ms']:.0f} ms)", flush=True)
    # The longest group first, so the workers finish together.
    tasks = [(group, seed, steps, tune_kw, args.tune) for group in ("tuned", "reinforce_scratch", "ce")
             for seed in seeds]
    per_seed: dict[int, dict] = {seed: {} for seed in seeds}
    for (_, seed, *_), arms in zip(tasks, map_runs(study_group, tasks, args.jobs), strict=True):
        per_seed[seed].update(arms)
    for seed in seeds:
        print(f"seed {seed}: " + ", ".join(f"{k} {100 * v['test_mean_f1']:.2f}" for k, v in per_seed[seed].items()))
    if args.quick:
        return
    arms = ["ce", "reinforce_scratch", "ce_phase_only"] + [a for a in per_seed[seeds[0]] if a.startswith("ce_then")]
    table = {arm: {key: [per_seed[s][arm][key] for s in seeds] for key in ("test_mean_f1", "test_fp_rate",
                                                                          "test_reward")} for arm in arms}
    write_json("rewards_study.json", {"machine": machine_info(), "steps": steps, "seeds": seeds, **tune_kw,
                                      "tune_variants": [{"lr_factor": f, "ce_weight": w} for f, w in args.tune],
                                      "policy": repr(policy), "timing": timing, "arms": table})
    ce = mean_std(table["ce"]["test_mean_f1"])[0]
    rows = ["| arm | test mean F1 (%) | test FP rate (%) | test reward f1_fp(w=0.3) | vs CE (points) |",
            "|---|---|---|---|---|"]
    for arm, t in table.items():
        delta = 100 * (mean_std(t["test_mean_f1"])[0] - ce)
        rows.append(f"| {arm} | {fmt_pct(t['test_mean_f1'])} | {fmt_pct(t['test_fp_rate'])} | "
                    f"{mean_std(t['test_reward'])[0]:.4f} | {delta:+.2f} |")
    best = max((a for a in arms if a.startswith("ce_then")), key=lambda a: mean_std(table[a]["test_mean_f1"])[0])
    gain = 100 * (mean_std(table[best]["test_mean_f1"])[0] - ce)
    body = (f"Written by `python -m benchmarks.rewards_study`: `tiny`, {steps} steps of batch 32 in every arm, "
            f"augmentation `{policy!r}` for all, seeds {seeds} (mean ± std); CE→REINFORCE switches after "
            f"{args.tune_from:.0%} of the steps, K = {args.num_samples}, entropy weight {args.entropy_weight}, "
            "reward `f1_fp(w=0.3)`; arm `ce_then_reinforce/BASELINE@lrF+ceW` tunes at F × the learning rate with "
            "W × cross-entropy mixed into the REINFORCE loss. `ce_phase_only` is the CE model the tuning arms "
            "start from.\n\n" + "\n".join(rows)
            + f"\n\n- best tuning arm `{best}`: {gain:+.2f} mean-F1 points over CE (target >= +1): "
            f"{'met' if gain >= 1 else 'NOT met'}\n- a K = 4 REINFORCE step costs "
            f"**{timing['reinforce_step_ratio']:.2f}×** a CE step on the same batches (target <= 1.3; "
            f"{timing['reinforce_k4_ms']:.0f} ms vs {timing['ce_ms']:.0f} ms)\n")
    update_results_section("Reward tuning: CE vs REINFORCE (issue 4)", body)


if __name__ == "__main__":
    main()

"""Headroom check: does the choice of augmentation move the shifted synthetic test score?

    python -m benchmarks.headroom [--steps 1500] [--seeds 0 1] [--jobs 2] [--quick]

Trains ``tiny`` with cross-entropy on the synthetic ``train`` split (NARROW nuisances) under six
augmentation policies, equal steps, and scores the WIDE ``test`` split. The benchmark is fit for
purpose when (1) the best policy beats ``none`` by >= 15 mean-F1 points and (2) ``matched`` beats
``matched_noswap`` by >= 5 points (the left/right label swap matters). Writes docs/headroom.json
(``{policy: [test mean F1 per seed]}``), docs/headroom_details.json and a RESULTS.md section.
"""
from __future__ import annotations

import dataclasses

from adaptive_de.augment import LevelPolicy, NoAugment, RandAugment, TrivialAugment
from adaptive_de.config import TrainConfig
from adaptive_de.data.labels import LAPA
from benchmarks.machine import machine_info
from benchmarks.runs import (
    apply_threads,
    fmt_pct,
    load_splits,
    map_runs,
    mean_std,
    scored_run,
    study_parser,
    update_results_section,
    write_json,
)

# Levels (0-4, see adaptive_de.augment.ops.RANGES) that mirror the WIDE test nuisances of
# adaptive_de.data.synthetic relative to the NARROW train faces: rotation ±45° (rotate 4: up to
# ±40°), size 0.75-1.25x train's (scale 2: 1/1.26-1.26), shifts ±15% (translate 3), exposure
# 0.35-1.7 and contrast 0.4-1.5 (brightness 4, contrast 4: ±0.6), colour cast (saturation 2, hue 2),
# blur up to 1.5 px (blur 2), noise up to 0.1 (noise 4), a little occlusion (erase 1), and
# mirrored faces (hflip 4: half the samples at p = 0.5).
MATCHED_LEVELS = {"rotate": 4, "scale": 2, "translate_x": 3, "translate_y": 3, "hflip": 4, "brightness": 4,
                  "contrast": 4, "saturation": 2, "hue": 2, "blur": 2, "noise": 4, "erase": 1}
MATCHED_P = 0.5

# LaPa without its left/right pairs: flips mirror the label maps but keep "left eye" on the old side.
LAPA_NO_SWAP = dataclasses.replace(LAPA, flip_pairs=())


def matched_policy(scheme=LAPA) -> LevelPolicy:
    """The hand-made policy that mirrors the test nuisances (``scheme`` sets which ids a flip swaps)."""
    return LevelPolicy(MATCHED_LEVELS, p=MATCHED_P, scheme=scheme)


def policies() -> dict:
    """The six policies of the headroom check, by name."""
    return {
        "none": NoAugment(),
        "trivialaugment": TrivialAugment(),
        "randaugment": RandAugment(2, 9),
        "matched": matched_policy(),
        "matched_noswap": matched_policy(LAPA_NO_SWAP),
        "extreme": LevelPolicy([4] * 16, p=1.0),
    }


def headroom_run(name: str, seed: int, steps: int) -> dict:
    """One scored CE run of ``tiny`` under the named policy (module-level: ``--jobs`` workers call it)."""
    data = load_splits("synth", splits=("train", "test"))
    run = scored_run(TrainConfig(steps=steps, seed=seed, device="cpu"), data, policies()[name])
    print(f"{name:>15} seed {seed}: test mean F1 {100 * run['test_mean_f1']:.2f} ({run['wall_seconds']:.0f} s)",
          flush=True)
    return run


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--policies", nargs="+", default=None, choices=list(policies()),
                        help="run only these (a partial check: writes no docs)")
    args = parser.parse_args()
    apply_threads(args.threads)
    steps, seeds = (10, [0]) if args.quick else (args.steps, args.seeds)
    chosen = [n for n in policies() if args.policies is None or n in args.policies]
    tasks = [(name, seed, steps) for name in chosen for seed in seeds]
    details: dict[str, list[dict]] = {}
    for (name, *_), run in zip(tasks, map_runs(headroom_run, tasks, args.jobs), strict=True):
        details.setdefault(name, []).append(run)
    if args.quick or args.policies:
        return
    summary = {name: [r["test_mean_f1"] for r in runs] for name, runs in details.items()}
    write_json("headroom.json", summary)
    write_json("headroom_details.json", {"machine": machine_info(), "steps": steps, "seeds": seeds,
                                         "matched_levels": MATCHED_LEVELS, "matched_p": MATCHED_P,
                                         "runs": details})
    best = max((n for n in summary if n != "none"), key=lambda n: mean_std(summary[n])[0])
    gain = 100 * (mean_std(summary[best])[0] - mean_std(summary["none"])[0])
    swap = 100 * (mean_std(summary["matched"])[0] - mean_std(summary["matched_noswap"])[0])
    rows = ["| policy | test mean F1 (%) | " + " | ".join(LAPA.classes[1:]) + " | FP rate (%) |",
            "|---|---|" + "---|" * (LAPA.num_classes - 1) + "---|"]
    for name, runs in details.items():
        per_class = [mean_std([r["test_f1"][c] for r in runs])[0] for c in range(1, LAPA.num_classes)]
        rows.append(f"| {name} | {fmt_pct(summary[name])} | " + " | ".join(f"{100 * v:.1f}" for v in per_class)
                    + f" | {100 * mean_std([r['test_fp_rate'] for r in runs])[0]:.2f} |")
    body = (f"Written by `python -m benchmarks.headroom`: `tiny`, cross-entropy, {steps} steps of batch 32 on the "
            f"NARROW `train` split, scored on the WIDE `test` split (1,000 faces); mean ± std over seeds {seeds}; "
            "per-class F1 is the seeds' mean.\n\n" + "\n".join(rows)
            + f"\n\n- best policy `{best}` beats `none` by **{gain:.1f}** mean-F1 points (target >= 15): "
            f"{'met' if gain >= 15 else 'NOT met'}\n- `matched` beats `matched_noswap` by **{swap:.1f}** points "
            f"(target >= 5): {'met' if swap >= 5 else 'NOT met'}\n")
    update_results_section("Headroom: augmentation choice on the shifted benchmark (issue 5)", body)


if __name__ == "__main__":
    main()

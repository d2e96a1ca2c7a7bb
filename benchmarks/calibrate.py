"""Calibration of the CPU presets: mean F1 vs wall time with CE and no augmentation, and the head choice.

    python -m benchmarks.calibrate [--quick]

Trains ``tiny`` with both parsing heads and ``small`` on the un-shifted synthetic benchmark
(``synth:shift=0``: train and test from one distribution), scoring val along the way. The target
(issue 3): ``tiny`` reaches test mean F1 >= 0.85 with every class above 0.6 within 5 minutes of
training on a 2-core CPU. Writes docs/calibration.json, docs/calibration.png and a RESULTS.md section.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de.config import TrainConfig  # noqa: E402
from adaptive_de.data.labels import LAPA  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.runs import (  # noqa: E402
    apply_threads,
    load_splits,
    save_figure,
    scored_run,
    study_parser,
    update_results_section,
    write_json,
)

RUNS = {  # name: (preset, head, steps)
    "tiny/progressive": ("tiny", "progressive", 1500),
    "tiny/linear": ("tiny", "linear", 1500),
    "small/progressive": ("small", "progressive", 400),
}


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    apply_threads(args.threads)
    data = load_splits("synth:shift=0")
    results = {}
    for name, (preset, head, steps) in RUNS.items():
        steps = 20 if args.quick else steps
        config = TrainConfig(model=preset, head=head, steps=steps, seed=args.seed, device="cpu")
        results[name] = scored_run(config, data, eval_every=max(steps // 10, 1))
        r = results[name]
        print(f"{name:>18}: test mean F1 {100 * r['test_mean_f1']:.2f}  min class F1 "
              f"{100 * min(v for v in r['test_f1'][1:] if v is not None):.2f}  {r['wall_seconds']:.0f} s "
              f"({r['images_per_s']:.0f} img/s)")
    if args.quick:
        return
    write_json("calibration.json", {"machine": machine_info(), "data": "synth:shift=0", "runs": results})
    write_report(results, machine_info())


def write_report(results: dict, machine: dict) -> None:
    """docs/calibration.png and the RESULTS.md section, from the runs' results."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.items():
        ax.plot([p["wall_seconds"] for p in r["curve"]], [p["mean_f1"] for p in r["curve"]], marker="o", label=name)
    ax.axhline(0.85, color="grey", ls="--", lw=1)
    ax.axvline(300, color="grey", ls=":", lw=1)
    ax.set(xlabel="training wall time (s, 2-core CPU)", ylabel="val mean F1 (200 images)",
           title="CE, no augmentation, un-shifted synthetic faces")
    ax.legend()
    save_figure(fig, "calibration.png")

    rows = ["| run | steps | train time (s) | img/s | test mean F1 | lowest class F1 |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lowest = min((v, c) for c, v in zip(LAPA.classes[1:], r["test_f1"][1:], strict=True) if v is not None)
        rows.append(f"| {name} | {RUNS[name][2]} | {r['wall_seconds']:.0f} | {r['images_per_s']:.0f} | "
                    f"{100 * r['test_mean_f1']:.2f} | {100 * lowest[0]:.2f} ({lowest[1]}) |")
    per_class = ["| class | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for c, cls in enumerate(LAPA.classes):
        per_class.append(f"| {cls} | " + " | ".join(f"{100 * r['test_f1'][c]:.2f}" for r in results.values()) + " |")
    body = ("Written by `python -m benchmarks.calibrate`. Cross-entropy, no augmentation, batch 32, "
            "`synth:shift=0` (train and test from one distribution), test split of 1,000 faces. "
            f"Timed with {machine['torch_threads']} torch thread(s); load average {machine['load_average_1min']} when "
            "the results were written (other jobs shared the 2 cores: the wall times are upper bounds; "
            "`docs/benchmarks.json` has the quiet-machine step rates).\n\n"
            + "\n".join(rows) + "\n\nPer-class test F1 (%):\n\n" + "\n".join(per_class)
            + "\n\n![mean F1 vs wall time](calibration.png)\n")
    update_results_section("Calibration of the CPU presets (issue 3)", body)


if __name__ == "__main__":
    main()

"""Face Transformer vs CNN: the ``tiny`` Face Transformer and the ResNet-18 U-Net (``unet-r18``) trained
the same way on synthetic and on real faces.

    python -m benchmarks.models_study [--seeds 0 1 2] [--steps 300] [--fasseg DIR] [--jobs 2] [--quick]

Per data set and seed both models train the same steps on the same batches (cross-entropy, batch 16,
no augmentation, 64x64 inputs) and are scored once on the test split: the default synthetic benchmark,
FASSEG ``frontal02`` (20 train faces: 16 train, 4 val -> its 50 test faces) and FASSEG
``multipose01`` (146 train, 36 val -> 92 test, yaw -90..+90), read as ``folder:`` specs with
``examples/fasseg.yaml``. The all-background prediction (mean F1 0) is the floor. Writes
docs/models_study.json (per-seed test mean F1 and per-class F1, paired unet-r18 - tiny gaps with 95%
intervals) and the RESULTS.md section.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from adaptive_de.config import TrainConfig
from adaptive_de.data.schemes import load_scheme
from benchmarks.machine import machine_info
from benchmarks.runs import (
    apply_threads,
    fmt_gap,
    fmt_pct,
    load_splits,
    map_runs,
    paired,
    scored_run,
    study_parser,
    update_results_section,
    write_json,
)

MODELS = ("tiny", "unet-r18")
FASSEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "realfaces" / "fasseg"
SCHEME = Path(__file__).resolve().parents[1] / "examples" / "fasseg.yaml"
BATCH = 16
SECTION = "Face Transformer vs CNN on synthetic and real faces (issue 16)"


def data_sets(fasseg: Path) -> dict[str, str]:
    """Name -> data spec; the FASSEG ones only where the folder exists."""
    sets = {"synthetic": "synth"}
    if fasseg.is_dir():
        for subset in ("frontal02", "multipose01"):
            sets[f"FASSEG {subset}"] = (f"folder:{fasseg},scheme={SCHEME},include={subset}_*,"
                                        f"test={subset}_test_*,train=0.8,val=0.2")
    return sets


def model_task(spec: str, preset: str, seed: int, steps: int) -> dict[str, Any]:
    """One model's run on one data set and seed (module level: ``--jobs`` workers call it)."""
    config = TrainConfig(model=preset, data=spec, steps=steps, batch_size=BATCH, seed=seed, device="cpu")
    result = scored_run(config, load_splits(spec))
    print(f"{preset:>9} seed {seed} {spec[:40]}: test mean F1 {100 * result['test_mean_f1']:.2f} "
          f"({result['wall_seconds']:.0f} s)", flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--fasseg", type=Path, default=FASSEG, help="the FASSEG folder (images/, labels/)")
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    seeds, steps = ([0], 10) if args.quick else (args.seeds, args.steps)
    sets = data_sets(args.fasseg)
    tasks = [(spec, preset, seed, steps) for spec in sets.values() for preset in MODELS for seed in seeds]
    results = iter(map_runs(model_task, tasks, args.jobs))
    table: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {preset: [next(results) for _ in seeds] for preset in MODELS} for name in sets}
    data = {"machine": machine_info(), "steps": steps, "batch_size": BATCH, "seeds": seeds,
            "data": sets, "classes": {name: list(classes(spec)) for name, spec in sets.items()},
            "runs": {name: {preset: [{k: r[k] for k in ("test_mean_f1", "test_f1", "test_fp_rate", "wall_seconds")}
                                     for r in runs] for preset, runs in by_model.items()}
                     for name, by_model in table.items()}}
    data["gaps"] = {name: paired([r["test_mean_f1"] for r in runs["unet-r18"]],
                                 [r["test_mean_f1"] for r in runs["tiny"]]) for name, runs in data["runs"].items()}
    if args.quick:
        print(report(data))
        return
    write_json("models_study.json", data)
    update_results_section(SECTION, report(data))
    print(report(data))


def classes(spec: str) -> tuple[str, ...]:
    return load_scheme(SCHEME).classes if spec.startswith("folder:") else load_splits(spec)["test"].scheme.classes


def report(data: dict[str, Any]) -> str:
    """The RESULTS.md section: test mean F1 per model and data set, the paired gaps, per-class F1."""
    m = data["machine"]
    rows = ["| data | model | test mean F1 (%) | train time per run (s) | unet-r18 - tiny, points (mean [95% CI]) |",
            "|---|---|---|---|---|"]
    for name, runs in data["runs"].items():
        for preset in MODELS:
            seconds = statistics.fmean(r["wall_seconds"] for r in runs[preset])
            gap = fmt_gap(data["gaps"][name]) if preset == "unet-r18" else ""
            rows.append(f"| {name} | {preset} | {fmt_pct([r['test_mean_f1'] for r in runs[preset]])} | "
                        f"{seconds:.0f} | {gap} |")
    per_class = []
    for name, runs in data["runs"].items():
        names = data["classes"][name]
        per_class.append(f"\n{name}, per-class test F1 (%, mean over seeds):\n\n| model | " + " | ".join(names[1:])
                         + " |\n|---|" + "---|" * (len(names) - 1))
        for preset in MODELS:
            values = [statistics.fmean(r["test_f1"][c] or 0.0 for r in runs[preset]) for c in range(1, len(names))]
            per_class.append(f"| {preset} | " + " | ".join(f"{100 * v:.1f}" for v in values) + " |")
    return (f"Written by `python -m benchmarks.models_study` (docs/models_study.json) on {m['cpu']}, {m['cores']} "
            f"cores: seeds {data['seeds']}, {data['steps']} steps of batch {data['batch_size']} for each model, "
            "cross-entropy, no augmentation, 64x64 inputs, the same batches for both models; test scored once. "
            "Predicting background everywhere scores 0 mean F1 on every set (each face class missed). FASSEG "
            "is read through `folder:` specs with `examples/fasseg.yaml` (train names split 0.8 / 0.2 into "
            "train / val by seed 0; its test faces are the published test split). Train times are per run, with "
            f"other jobs sharing the cores (load average {m['load_average_1min']}): upper bounds, for the ratio.\n\n"
            + "\n".join(rows) + "\n" + "\n".join(per_class) + "\n")


if __name__ == "__main__":
    main()

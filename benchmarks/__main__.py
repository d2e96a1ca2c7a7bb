"""The speed suite: every speed benchmark in one run, a table, and docs/benchmarks.json.

    python -m benchmarks [--quick | --report]

Writes docs/benchmarks.json and the speed section of docs/RESULTS.md. ``--quick`` (a smoke
check) writes its figures under runs/benchmarks-quick/ instead; ``--report`` re-renders the
RESULTS.md section from docs/benchmarks.json without timing anything.

Ratios are measured against a baseline in the same run. Time it on a quiet machine: other jobs on
a 2-core CPU distort the figures badly (the load average before the run is recorded).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from adaptive_de.data import FaceParsingSet
from adaptive_de.data.labels import LAPA
from adaptive_de.data.synthetic import render_faces
from adaptive_de.files import atomic_write_text
from benchmarks import bench_augment, bench_model, bench_synth, ray_overhead, train_speed
from benchmarks.headroom import matched_policy
from benchmarks.machine import machine_info
from benchmarks.overhead import overhead_ratio
from benchmarks.rewards_study import step_time_ratio
from benchmarks.runs import DOCS, update_results_section

SECTION = "Speed suite (issue 7)"
# metric -> (comparison, bound as written, unit note): the one place the speed targets are set
BOUNDS = {"overhead_ratio": ("<=", "1.10", ""), "augment_speedup_vs_kornia": (">=", "3", ""),
          "reinforce_step_ratio": ("<=", "1.3", ""), "train_round_speedup_cpu": (">=", f"{train_speed.TARGET:g}", ""),
          "ray_overhead_ratio": ("<=", f"{ray_overhead.TARGET:g}", ""),
          "synth_faces_per_s": (">=", f"{bench_synth.TARGET_64:g}", " (64 px)")}
TARGETS = {k: f"{op} {bound}{note}" for k, (op, bound, note) in BOUNDS.items()}


def meets(metric: str, value: float) -> bool:
    op, bound, _ = BOUNDS[metric]
    return value <= float(bound) if op == "<=" else value >= float(bound)


def reinforce_step_ratio(quick: bool) -> dict:
    images, labels = render_faces(256)
    data = {"train": FaceParsingSet(images, labels, LAPA, [str(i) for i in range(len(images))])}
    return step_time_ratio(data, matched_policy(), reps=3 if quick else 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 5 minutes on 2 cores)")
    parser.add_argument("--report", action="store_true", help="only re-render the RESULTS.md section")
    args = parser.parse_args()
    if args.report:
        update_results_section(SECTION, report(json.loads((DOCS / "benchmarks.json").read_text())))
        return
    quick = ["--quick"] if args.quick else []
    # A smoke check must not overwrite the committed full-run figures in docs/.
    folder = Path("runs/benchmarks-quick") if args.quick else Path("docs")
    folder.mkdir(parents=True, exist_ok=True)
    out: dict = {"quick": args.quick, "machine": machine_info(), "targets": TARGETS}

    synth = bench_synth.run(args.quick)
    out["synth_faces_per_s"] = synth["synth_faces_per_s"]
    out["synth"] = synth["faces_per_s"]

    bench_augment.main(quick + ["--device", "cpu", "--out", str(folder / "bench_augment.json")])
    aug = json.loads((folder / "bench_augment.json").read_text())["results"]
    out["augment"] = aug
    out["augment_speedup_vs_kornia"] = next(r["speedup"] for r in aug
                                            if r["case"] == "equal_work" and r["batch"] == 64 and r["size"] == 112)

    bench_model.main(quick + ["--out", str(folder / "bench_model.json")])
    model = json.loads((folder / "bench_model.json").read_text())
    out["model_images_per_s"] = {k: v["images_per_s"] for k, v in model["cpu_training"].items()}
    out["vit_p12s8_gmacs"] = model["vit-p12s8"]["gmacs_analytic"]

    out.update(reinforce_step_ratio(args.quick))
    out.update(overhead_ratio(quick=args.quick))
    speed = train_speed.compare(train_speed.BASELINE, **(train_speed.QUICK if args.quick else train_speed.FULL))
    out["train_round_speedup_cpu"] = speed["train_round_speedup_cpu"]
    repeats = 1 if args.quick else 2
    out["ray_overhead_ratio"] = ray_overhead.compare(repeats, rounds=repeats)["ray_overhead_ratio"]

    print("\nmetric                         value      target")
    for key in BOUNDS:
        print(f"{key:<28} {out[key]:>9.2f}   {TARGETS[key]}")
    for preset, ips in out["model_images_per_s"].items():
        print(f"model {preset:<22} {ips:>9.1f}   images/s (train step, batch 32)")
    atomic_write_text(folder / "benchmarks.json", json.dumps(out, indent=2) + "\n")
    print(f"wrote {folder / 'benchmarks.json'}")
    if not args.quick:
        update_results_section(SECTION, report(out))


def record(figures: dict, *, by: str, machine: dict) -> None:
    """Merge figures measured on their own (``by``: e.g. ``benchmarks.train_speed``, on ``machine``) into
    docs/benchmarks.json, noting the script and machine, and re-render the RESULTS.md section."""
    path = DOCS / "benchmarks.json"
    data = json.loads(path.read_text())
    separate = {k: v for k, v in data.get("measured_separately", {}).items() if k not in figures}
    separate.update({k: {"by": by, "machine": machine} for k in figures})
    data = {**data, **figures, "measured_separately": separate}
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    update_results_section(SECTION, report(data))


def report(data: dict) -> str:
    """The RESULTS.md speed section: each target against its measured figure, and the machine."""
    m = data["machine"]
    rows = ["| metric | measured | target | |", "|---|---|---|---|"]
    rows += [f"| `{k}` | {data[k]:,.2f} | {TARGETS[k]} | {'met' if meets(k, data[k]) else '**not met**'} |"
             for k in BOUNDS if k in data]
    rows += [f"| model `{p}` train step | {ips:,.1f} images/s | | |" for p, ips in data["model_images_per_s"].items()]
    aug = ["| case | batch | size | ours ms | Kornia ms | speedup |", "|---|---|---|---|---|---|"]
    aug += [f"| {r['case']} | {r['batch']} | {r['size']} | {r['ours_ms']:.2f} | {r['kornia_ms']:.2f} | "
            f"{r['speedup']:.2f}x |" for r in data["augment"]]
    separate = "".join(f" `{k}` was measured on its own by `python -m {v['by']}` on {v['machine']['cpu']} (load "
                       f"average {v['machine']['load_average_1min']} before)." for k, v in
                       data.get("measured_separately", {}).items())
    return (f"Written by `python -m benchmarks` (docs/benchmarks.json) on {m['cpu']}, {m['cores']} cores, "
            f"{m['torch_threads']} torch threads, torch {m['torch']}; load average {m['load_average_1min']} before "
            f"the run.{separate}\n\n" + "\n".join(rows)
            + f"\n\n`overhead_ratio`: one `env.step()` ({data['inner_steps_per_env_step']} inner steps with a "
            f"`LevelPolicy` at level 2 on every op and the sampler mixture, then the {data['val_images']}-image "
            f"val subset) took {data['env_step_s']:.2f} s against {data['bare_loop_s']:.2f} s for a bare loop "
            f"(medians, the two alternated). `reinforce_step_ratio`: {data['reinforce_k4_ms']:.0f} ms for a K = 4 "
            f"REINFORCE step against {data['ce_ms']:.0f} ms for a CE step. Renderer (faces/s): "
            + ", ".join(f"{k} {v:,.0f}" for k, v in data["synth"].items())
            + ".\n\nAugmentation on the CPU, ours vs Kornia (median ms per batch):\n\n" + "\n".join(aug) + "\n")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()

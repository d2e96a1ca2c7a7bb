"""The GPU-check section of docs/RESULTS.md, from the files ``scripts/gpu_check.sh`` leaves in docs/.

    python -m benchmarks.gpu_report

Reads docs/bench_model_cuda.json, docs/bench_augment_cuda.json and docs/gpu_check_run.json (the
results of the script's short ``run --preset gpu``); a missing file is reported as not run.
"""
from __future__ import annotations

import json
from typing import Any

from benchmarks.runs import DOCS, update_results_section

SECTION = "GPU check (issue 7)"
RUN_COMMAND = ("python -m adaptive_de.run --agent ppo --preset gpu --env rounds=2 exploit_every=1 pretrain_steps=1000 "
               "--compare none")


def _read(name: str) -> dict[str, Any] | None:
    path = DOCS / name
    return json.loads(path.read_text()) if path.exists() else None


def report() -> str:
    model, augment, run = (_read(n) for n in ("bench_model_cuda.json", "bench_augment_cuda.json",
                                              "gpu_check_run.json"))
    lines = []
    if model and model.get("cuda_training"):
        t, m = model["cuda_training"], model["machine"]
        lines += [f"Written by `python -m benchmarks.gpu_report` from `scripts/gpu_check.sh` on **{t['device']}** "
                  f"(torch {m['torch']}, {m['cores']} CPU cores).", "",
                  f"- Model (`bench_model`): `{t['preset']}` training at batch {t['batch']}, {t['image_size']} px, "
                  f"{t['dtype']}: **{t['images_per_s']:,.0f} images/s**, {t['achieved_tflops']:.0f} TFLOP/s of a "
                  f"{t['peak_tflops']:.0f} TFLOP/s bf16 peak: **MFU {100 * t['mfu']:.1f}%**, peak memory "
                  f"{t['max_memory_gib']:.1f} GiB."]
        eager, rounds = model.get("cuda_training_eager"), model.get("cuda_train_round")
        if eager:
            lines.append(f"- The same step eager (not compiled): {eager['images_per_s']:,.0f} images/s, "
                         f"MFU {100 * eager['mfu']:.1f}%.")
        if rounds:
            vit, small, plain = rounds["vit-p12s8"], rounds["small"], rounds.get("small_no_graph")
            graph = " with its CUDA graph" if small.get("cuda_graph") else ""
            lines.append(f"- `InnerTrainer.train_round` (sampler mixture, `LevelPolicy` at level 2, compiled): "
                         f"`vit-p12s8` batch {vit['batch']} **{vit['images_per_s']:,.0f} images/s = "
                         f"{vit['ratio_to_model_step']:.2f}x the model step** (target ≥ 0.85); `small` batch "
                         f"{small['batch']}{graph} **{small['seconds_per_1000_steps']:.1f} s per 1,000 steps** "
                         f"(target ≤ 6.05, a quarter of the 24.2 s before issue 14)"
                         + (f"; without the graph {plain['seconds_per_1000_steps']:.1f} s." if plain else "."))
    else:
        lines.append("- Model benchmark on CUDA: not run.")
    if augment:
        lines += ["- Augmentation (`bench_augment --device cuda`, ours vs Kornia, median ms per batch):", "",
                  "| case | batch | size | ours ms | Kornia ms | speedup |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['case']} | {r['batch']} | {r['size']} | {r['ours_ms']:.2f} | {r['kornia_ms']:.2f} | "
                  f"{r['speedup']:.2f}x |" for r in augment["results"]]
        lines.append("")
    else:
        lines.append("- Augmentation benchmark on CUDA: not run.")
    if run:
        rows = ", ".join(f"`{name}` {100 * r['test_mean_f1']:.2f}" for name, r in run["methods"].items())
        lines.append(f"- A short run, `{RUN_COMMAND}` (the warm-up, then a 2-round population run for each method): "
                     f"test mean F1 (%) {rows}. One seed and two rounds: a check that the GPU path runs "
                     "end to end, not a comparison.")
    else:
        lines.append("- Short `run --preset gpu`: not run.")
    return "\n".join(lines) + "\n"


def main() -> None:
    update_results_section(SECTION, report())


if __name__ == "__main__":
    main()

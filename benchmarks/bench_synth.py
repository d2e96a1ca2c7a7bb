"""Faces per second of the synthetic benchmark's renderer (64 and 112 px), written to docs/bench_synth.json.

    python -m benchmarks.bench_synth [--quick]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from adaptive_de.data.synthetic import render_faces
from adaptive_de.files import atomic_write_text
from benchmarks.machine import machine_info

TARGET_64 = 2000.0


def faces_per_second(size: int, n: int, reps: int, split: str) -> float:
    render_faces(min(n, 64), size=size, split=split)  # warm-up: allocator, kernels, noise bank
    best = float("inf")
    for r in range(reps):
        t0 = time.perf_counter()
        render_faces(n, size=size, seed=r, split=split)
        best = min(best, time.perf_counter() - t0)
    return n / best


def run(quick: bool = False) -> dict:
    """Best-of-``reps`` throughput per size and split (train is the cheaper, unoccluded range)."""
    n, reps = (256, 2) if quick else (1024, 5)
    result = {"machine": machine_info(), "target_faces_per_s_64": TARGET_64, "faces_per_s": {}}
    for size in (64, 112):
        for split in ("train", "test"):
            result["faces_per_s"][f"{size}px_{split}"] = round(faces_per_second(size, n, reps, split), 1)
    fps = result["faces_per_s"]
    result["synth_faces_per_s"] = min(fps["64px_train"], fps["64px_test"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer faces and repetitions")
    parser.add_argument("--out", default="docs/bench_synth.json")
    args = parser.parse_args()
    result = run(args.quick)
    for key, value in result["faces_per_s"].items():
        print(f"{key:>12}: {value:8.0f} faces/s")
    print(f"64 px (worst split) {result['synth_faces_per_s']:.0f} faces/s, target >= {TARGET_64:.0f}")
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()

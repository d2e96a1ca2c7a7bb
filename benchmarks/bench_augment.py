"""Augmentation speed: our batched policies against Kornia on the same batches.

    python -m benchmarks.bench_augment [--quick] [--device cpu|cuda] [--reps N] [--out docs/bench_augment.json]

Both sides get the same float images in [0, 1] plus label maps (ours: int64 [B, H, W]; Kornia:
float [B, 1, H, W], which its mask key needs), so no uint8 conversion is timed. Three comparisons:

* equal work: our ``LevelPolicy`` with rotate, scale, translate, brightness, contrast, saturation,
  hue, blur and noise at level 2 (half range) and p = 1, against Kornia's RandomAffine(20°,
  translate 0.1, scale 0.8 – 1.2) + ColorJitter(0.3, 0.3, 0.3, 0.05) + RandomGaussianBlur(5x5,
  sigma 0.1 – 1.5) + RandomGaussianNoise(0.05), all p = 1 (target: ours at least 3x faster);
* our per-image RandAugment(2, 9) against Kornia's batch-wise ``auto.RandAugment(n=2, m=10)``;
* our per-image TrivialAugment against Kornia's ``auto.TrivialAugment``
  (target for both: ours at most 2x Kornia's time, although ours draws its ops per image).

Each figure is the median of ``--reps`` timed calls after warm-up; the two sides alternate call by
call so that load from other processes hits both alike. ``--quick`` is a smoke run, not a measurement.
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable

import kornia
import kornia.augmentation as K
import torch

from adaptive_de.augment import LevelPolicy, RandAugment, TrivialAugment
from adaptive_de.device import pick_device
from adaptive_de.errors import run_cli
from adaptive_de.files import atomic_write_text
from benchmarks.machine import machine_info

SHAPES = ((32, 64), (64, 112))  # (batch, image size)
EQUAL_WORK_OPS = ("rotate", "scale", "translate_x", "translate_y", "brightness", "contrast", "saturation", "hue",
                  "blur", "noise")
TARGETS = {"equal_work": "speedup >= 3", "randaugment": "speedup >= 0.5", "trivialaugment": "speedup >= 0.5"}


def comparisons() -> dict[str, tuple[Callable, torch.nn.Module]]:
    """name → (our policy, Kornia's pipeline)."""
    kornia_chain = K.AugmentationSequential(
        K.RandomAffine(degrees=20, translate=(0.1, 0.1), scale=(0.8, 1.2), p=1.0),
        K.ColorJitter(0.3, 0.3, 0.3, 0.05, p=1.0),
        K.RandomGaussianBlur((5, 5), (0.1, 1.5), p=1.0),
        K.RandomGaussianNoise(std=0.05, p=1.0),
        data_keys=["input", "mask"],
    )
    return {
        "equal_work": (LevelPolicy(dict.fromkeys(EQUAL_WORK_OPS, 2), p=1.0), kornia_chain),
        "randaugment": (RandAugment(2, 9), K.AugmentationSequential(K.auto.RandAugment(n=2, m=10),
                                                                    data_keys=["input", "mask"])),
        "trivialaugment": (TrivialAugment(), K.AugmentationSequential(K.auto.TrivialAugment(),
                                                                      data_keys=["input", "mask"])),
    }


def make_batch(batch: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and 11-class label maps (speed does not depend on the content)."""
    g = torch.Generator().manual_seed(batch * 1000 + size)
    images = torch.rand(batch, 3, size, size, generator=g)
    labels = torch.randint(0, 11, (batch, size, size), generator=g)
    return images.to(device), labels.to(device)


def time_pair(ours: Callable[[], object], theirs: Callable[[], object], device: torch.device, *,
              warmup: int, reps: int) -> tuple[float, float]:
    """Median milliseconds of ``ours()`` and ``theirs()``, timed alternately."""
    def once(fn: Callable[[], object]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) * 1e3

    for _ in range(warmup):
        once(ours), once(theirs)
    times = [(once(ours), once(theirs)) for _ in range(reps)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def describe_machine(device: torch.device) -> dict:
    return {**machine_info(), "kornia": kornia.__version__, "device": str(device)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 warm-up, 3 timed calls; not a measurement")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--reps", type=int, default=21, help="timed calls per side and case")
    parser.add_argument("--out", default="docs/bench_augment.json", help="JSON results file (written atomically)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    device = pick_device(args.device)
    warmup, reps = (1, 3) if args.quick else (5, args.reps)
    machine = describe_machine(device)  # before the runs, so the load average is other processes' alone

    generator = torch.Generator().manual_seed(0)
    rows = []
    print(f"{'case':<15} {'batch':>5} {'size':>4} {'ours ms':>9} {'kornia ms':>10} {'speedup':>8}")
    for name, (ours, theirs) in comparisons().items():
        theirs.to(device)
        for batch, size in SHAPES:
            images, labels = make_batch(batch, size, device)
            masks = labels.unsqueeze(1).float()
            ours_ms, kornia_ms = time_pair(functools.partial(ours, images, labels, generator=generator),
                                           functools.partial(theirs, images, masks), device,
                                           warmup=warmup, reps=reps)
            rows.append({"case": name, "batch": batch, "size": size, "ours_ms": round(ours_ms, 3),
                         "kornia_ms": round(kornia_ms, 3), "speedup": round(kornia_ms / ours_ms, 2)})
            print(f"{name:<15} {batch:>5} {size:>4} {ours_ms:9.2f} {kornia_ms:10.2f} {kornia_ms / ours_ms:7.2f}x")

    results = {"quick": args.quick, "reps": reps, "machine": machine, "targets": TARGETS,
               "speedup": "kornia_ms / ours_ms", "results": rows}
    atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))

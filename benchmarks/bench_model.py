"""Model speed and size: training throughput, eager and compiled, of the model alone and of the real
``InnerTrainer.train_round``; MACs of the paper model; CUDA MFU.

    python -m benchmarks.bench_model [--quick] [--cuda-only] [--out docs/bench_model.json] [--peak-tflops X]

A model-only step = forward, cross-entropy, backward and a fused AdamW step on a fixed random
batch (throughput does not depend on the pixels). A ``train_round`` step adds what training
really does: sampling a batch (a uniform/class-balanced mixture), augmenting it on the device
(``LevelPolicy`` at level 2 on every op), gradient clipping and the round's bookkeeping. Each
figure is the median of several timed steps (or rounds) after warm-up. On CUDA the model step
runs in bf16 autocast and the MFU is model FLOPs/s over the device's bf16 dense peak.
``--quick`` is a smoke run with too few steps to be a measurement; ``--cuda-only`` skips the CPU
figures (docs/bench_model.json holds them), so that a short GPU lease is spent on the GPU.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from adaptive_de.augment import OPS, LevelPolicy
from adaptive_de.config import TrainConfig
from adaptive_de.device import autocast
from adaptive_de.files import atomic_write_text
from adaptive_de.models import PRESETS, FaceTransformerConfig, build_model
from adaptive_de.trainer import GRAPH_WARMUP, InnerTrainer
from benchmarks.machine import machine_info

NUM_CLASSES = 11  # LaPa
ROUND_DATA = "synth:train=512,val=16,test=16"  # train_round needs real label maps; their content costs nothing
# Dense bf16 tensor-core peaks (TFLOP/s) by a substring of torch.cuda.get_device_name();
# the first match wins, so more specific names come first.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("GH200", 989.0), ("H200", 989.0), ("H100", 989.0),
    ("A100", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("A10", 125.0),
)


def analytic_macs(cfg: FaceTransformerConfig, height: int, width: int) -> int:
    """Multiply-accumulates of one backbone forward pass (linears, patch projection, attention matmuls)."""
    gh, gw = cfg.grid_size(height, width)
    n, d = 1 + gh * gw, cfg.dim
    patch = gh * gw * cfg.patch_dim * d
    linears = n * (3 * d * d + d * d + 2 * d * cfg.mlp_dim)  # qkv, out projection, two FF layers
    attention = 2 * n * n * d  # q @ k.T and attn @ v over all heads
    return patch + cfg.depth * (linears + attention)


def counted_flops(model: torch.nn.Module, x: torch.Tensor, backward: bool = False) -> int:
    """FLOPs counted by ``FlopCounterMode``; SDPA runs as plain matmuls so that every backend's attention counts."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.float().square().mean().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def train_step_seconds(model: torch.nn.Module, batch: int, size: int, device: torch.device, *,
                       warmup: int, iters: int, compiled: bool = False) -> list[float]:
    """Wall time of each timed training step (forward, CE, backward, AdamW) on a fixed random batch."""
    model.to(device).train()
    if compiled:
        torch._dynamo.reset()  # each measurement compiles afresh (see bench_train_round)
    forward = torch.compile(model) if compiled else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, NUM_CLASSES, (batch, size, size), device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    for i in range(warmup + iters):
        sync()
        start = time.perf_counter()
        with autocast(device):
            loss = F.cross_entropy(forward(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def bench_cpu_training(preset: str, batch: int, *, warmup: int, iters: int, compiled: bool = False) -> dict:
    torch.manual_seed(0)
    model = build_model(preset, num_classes=NUM_CLASSES)
    size = model.preset.image_size
    times = train_step_seconds(model, batch, size, torch.device("cpu"), warmup=warmup, iters=iters, compiled=compiled)
    step = statistics.median(times)
    return {"params": sum(p.numel() for p in model.parameters()), "batch": batch, "image_size": size,
            "compiled": compiled, "timed_steps": iters, "step_ms_median": 1e3 * step, "images_per_s": batch / step}


def bench_train_round(preset: str, batch: int, device: torch.device, *, compiled: bool, warmup: int, steps: int,
                      rounds: int = 3, cuda_graph: bool | None = None) -> dict:
    """``InnerTrainer.train_round`` throughput: sampler mixture, ``LevelPolicy`` at level 2, CE, on ``device``.
    The warm-up round also records the CUDA graph (``cuda_graph``: the trainer's default where None)."""
    # A second model of the same class would otherwise recompile with dynamic shapes, which is slower and,
    # in torch 2.11's inductor, fails on `small` after `vit-p12s8` (an assertion in its tiling analysis).
    if compiled:
        torch._dynamo.reset()
    config = TrainConfig(model=preset, data=ROUND_DATA, batch_size=batch, steps=100_000, device=str(device),
                         compile=compiled, cuda_graph=cuda_graph, seed=0)
    trainer = InnerTrainer(config, splits=("train",))
    trainer.sampler.set_coefficients((0.5, 0.5, 0.0))
    policy = LevelPolicy([2] * len(OPS))
    trainer.train_round(policy, steps=max(warmup, GRAPH_WARMUP + 1))
    speeds = [trainer.train_round(policy, steps=steps)["images_per_s"] for _ in range(rounds)]
    ips = statistics.median(speeds)
    return {"preset": preset, "batch": batch, "compiled": compiled, "cuda_graph": trainer.graphed,
            "timed_steps": rounds * steps,
            "images_per_s": ips, "seconds_per_1000_steps": 1000 * batch / ips}


def bench_paper_size(preset: str) -> dict:
    """Parameters and per-image GMACs of a paper preset, analytic and counted (FLOPs / 2)."""
    cfg = PRESETS[preset]
    model = build_model(preset, num_classes=0, task="recognition").eval()
    x = torch.randn(1, 3, cfg.image_size, cfg.image_size)
    with torch.no_grad():
        counted = counted_flops(model, x) / 2
    analytic = analytic_macs(cfg, cfg.image_size, cfg.image_size)
    return {"image_size": cfg.image_size, "backbone_params": sum(p.numel() for p in model.backbone.parameters()),
            "gmacs_analytic": analytic / 1e9, "gmacs_flop_counter": counted / 1e9,
            "relative_difference": abs(counted - analytic) / analytic}


def peak_tflops(device_name: str, override: float | None) -> float | None:
    if override is not None:
        return override
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in device_name), None)


def bench_cuda_training(preset: str, batch: int, *, warmup: int, iters: int, peak_override: float | None,
                        compiled: bool = True) -> dict:
    """bf16-autocast training throughput of the parsing model and its MFU (model FLOPs/s over the bf16 peak)."""
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    torch.manual_seed(0)
    model = build_model(preset, num_classes=NUM_CLASSES)
    size = model.preset.image_size
    # Model FLOPs of forward + backward for one image, counted once at batch 1 on the CPU.
    flops_per_image = counted_flops(model, torch.randn(1, 3, size, size), backward=True)
    times = train_step_seconds(model, batch, size, device, warmup=warmup, iters=iters, compiled=compiled)
    images_per_s = batch / statistics.median(times)
    peak = peak_tflops(name, peak_override)
    achieved = flops_per_image * images_per_s
    return {"device": name, "preset": preset, "task": "parsing", "batch": batch, "image_size": size,
            "dtype": "bf16 autocast", "compiled": compiled, "timed_steps": iters, "images_per_s": images_per_s,
            "train_gflops_per_image": flops_per_image / 1e9, "achieved_tflops": achieved / 1e12,
            "peak_tflops": peak, "mfu": None if peak is None else achieved / (peak * 1e12),
            "max_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30}


def bench_cpu(results: dict, batch: int, *, warmup: int, iters: int) -> None:
    """The CPU figures into ``results``: model-only steps of ``tiny`` and ``small`` (eager, and ``tiny``
    compiled) and ``tiny``'s ``train_round``, eager and compiled."""
    results["cpu_training"] = {}
    for preset in ("tiny", "small"):
        r = bench_cpu_training(preset, batch, warmup=warmup, iters=iters)
        results["cpu_training"][preset] = r
        print(f"cpu {preset:>5}: {r['params']:>10,} params  {r['images_per_s']:8.1f} images/s  "
              f"({r['step_ms_median']:.0f} ms/step, batch {r['batch']}, {r['image_size']} px)")
    cpu = torch.device("cpu")
    r = results["cpu_training_compiled"] = bench_cpu_training("tiny", batch, warmup=warmup, iters=iters,
                                                              compiled=True)
    print(f"cpu  tiny compiled: {r['images_per_s']:8.1f} images/s")
    results["cpu_train_round"] = {}
    for compiled in (False, True):
        r = bench_train_round("tiny", batch, cpu, compiled=compiled, warmup=warmup, steps=iters)
        results["cpu_train_round"]["compiled" if compiled else "eager"] = r
        print(f"cpu  tiny train_round {'compiled' if compiled else 'eager':>8}: {r['images_per_s']:8.1f} images/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 warm-up, 2 timed steps; not a measurement")
    parser.add_argument("--out", default="docs/bench_model.json", help="JSON results file (written atomically)")
    parser.add_argument("--cpu-batch", type=int, default=32)
    parser.add_argument("--cuda-batch", type=int, default=256)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="accelerator bf16 dense peak for the MFU; default: looked up by device name")
    parser.add_argument("--cuda-only", action="store_true", help="skip the CPU figures")
    args = parser.parse_args(argv)
    warmup, iters = (1, 2) if args.quick else (3, 10)

    if args.cuda_only and not torch.cuda.is_available():
        parser.error("--cuda-only needs a CUDA device")

    results: dict = {"quick": args.quick, "machine": machine_info()}
    if not args.cuda_only:
        bench_cpu(results, args.cpu_batch, warmup=warmup, iters=iters)
    r = results["vit-p12s8"] = bench_paper_size("vit-p12s8")
    print(f"vit-p12s8: {r['backbone_params']:,} backbone params  {r['gmacs_analytic']:.3f} GMACs/image analytic, "
          f"{r['gmacs_flop_counter']:.3f} counted")

    results["cuda_training"] = results["cuda_training_eager"] = results["cuda_train_round"] = None
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        for key, compiled in (("cuda_training_eager", False), ("cuda_training", True)):
            r = results[key] = bench_cuda_training("vit-p12s8", args.cuda_batch, warmup=warmup, iters=iters,
                                                   peak_override=args.peak_tflops, compiled=compiled)
            mfu = "unknown peak" if r["mfu"] is None else f"MFU {100 * r['mfu']:.1f}%"
            print(f"cuda vit-p12s8 {'compiled' if compiled else 'eager':>8}: {r['images_per_s']:.0f} images/s at batch "
                  f"{r['batch']} on {r['device']}, {r['achieved_tflops']:.0f} TFLOP/s, {mfu}")
        rounds = results["cuda_train_round"] = {
            "vit-p12s8": bench_train_round("vit-p12s8", args.cuda_batch, cuda, compiled=True, warmup=warmup,
                                           steps=iters),
            "small": bench_train_round("small", 128, cuda, compiled=True, warmup=warmup, steps=5 * iters),
            "small_no_graph": bench_train_round("small", 128, cuda, compiled=True, warmup=warmup, steps=5 * iters,
                                                cuda_graph=False)}
        rounds["vit-p12s8"]["ratio_to_model_step"] = (rounds["vit-p12s8"]["images_per_s"]
                                                      / results["cuda_training"]["images_per_s"])
        print(f"cuda train_round vit-p12s8: {rounds['vit-p12s8']['images_per_s']:.0f} images/s "
              f"({rounds['vit-p12s8']['ratio_to_model_step']:.2f}x the model step); small batch 128: "
              f"{rounds['small']['seconds_per_1000_steps']:.1f} s per 1,000 steps (without the CUDA graph "
              f"{rounds['small_no_graph']['seconds_per_1000_steps']:.1f} s)")

    atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``train_round`` throughput against an earlier commit, side by side: the issue-14 CPU target.

    python -m benchmarks.train_speed [--baseline d418e9c] [--blocks 20] [--quick]

The baseline's ``adaptive_de`` package is unpacked from git into a temporary folder. One worker
process per version builds an ``InnerTrainer`` (``tiny``, batch 32, CE, seed 0, synthetic data, no
augmentation), records the losses of its first steps and warms up; then the two time blocks of
``train_round`` steps in turn (baseline, current, baseline, ...), so that drift in the machine's
speed hits both alike. The figure is the ratio of the two versions' median block speeds.
The first losses of the two versions must agree within ``LOSS_RTOL``: the speed-up keeps the maths.

Writes docs/train_speed.json, adds ``train_round_speedup_cpu`` to docs/benchmarks.json and
re-renders the speed section of docs/RESULTS.md. Time it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "d418e9c"  # main when issue 14 was filed
TARGET = 1.3
SECTION = "Training speed on the CPU (issue 14)"
LOSS_RTOL = 1e-4
FIRST_STEPS = 5
DATA = "synth:train=512,val=16,test=16"
FULL = dict(blocks=20, warmup=5, steps=10)
QUICK = dict(blocks=1, warmup=1, steps=2)  # a smoke run, not a measurement


def serve(source: str | None, *, warmup: int, steps: int) -> None:
    """Worker: build a trainer from the ``adaptive_de`` under ``source`` (None: the installed one), print its
    first losses, warm up, then time one block of ``steps`` steps for each line read from stdin."""
    if source:
        sys.path.insert(0, source)
    import torch

    import adaptive_de

    trainer = speed_trainer()
    losses = [trainer.train_round(steps=1)["loss"] for _ in range(FIRST_STEPS)]
    trainer.train_round(steps=warmup)
    print(json.dumps({"package": str(Path(adaptive_de.__file__).parent), "threads": torch.get_num_threads(),
                      "first_losses": losses}), flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        trainer.train_round(steps=steps)
        print(json.dumps(steps * 32 / (time.perf_counter() - start)), flush=True)


def speed_trainer():
    """The timed trainer (``tiny``, batch 32, CE, seed 0), built by whichever ``adaptive_de`` is imported."""
    import dataclasses

    from adaptive_de.config import TrainConfig
    from adaptive_de.trainer import InnerTrainer

    # the baseline commit's TrainConfig names its model field "preset"
    model_key = "model" if "model" in {f.name for f in dataclasses.fields(TrainConfig)} else "preset"
    config = TrainConfig(**{model_key: "tiny"}, data=DATA, batch_size=32, steps=100_000, loss="ce", seed=0)
    return InnerTrainer(config, splits=("train",))


def unpack(rev: str, folder: Path) -> Path:
    """``adaptive_de/`` as of ``rev`` (a commit of this repository) under ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "adaptive_de"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def start_worker(source: str | None, *, warmup: int, steps: int) -> tuple[subprocess.Popen, dict]:
    """A ``serve`` process (each version imports its own package and keeps its own process settings)."""
    spec = json.dumps({"source": source, "warmup": warmup, "steps": steps})
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.train_speed", "--worker", spec], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


def compare(baseline: str, *, blocks: int, warmup: int, steps: int) -> dict:
    """Time ``blocks`` blocks of each version, alternating block by block; the ratio and the first-loss check."""
    from benchmarks.machine import machine_info

    machine = machine_info()  # the load average before the run
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", baseline], capture_output=True,
                            text=True, check=True).stdout.strip()
    speeds: dict[str, list[float]] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory() as tmp:
        workers = {"baseline": start_worker(str(unpack(commit, Path(tmp))), warmup=warmup, steps=steps),
                   "current": start_worker(None, warmup=warmup, steps=steps)}
        try:
            for b in range(blocks):
                for name, (proc, _) in workers.items():  # the idle one waits on its stdin, off the cores
                    proc.stdin.write("\n")
                    proc.stdin.flush()
                    speeds[name].append(json.loads(proc.stdout.readline()))
                print(f"block {b + 1}/{blocks}: baseline {speeds['baseline'][-1]:6.1f}, current "
                      f"{speeds['current'][-1]:6.1f} images/s")
        finally:
            for proc, _ in workers.values():
                proc.stdin.close()
                proc.wait()
    median = {k: statistics.median(v) for k, v in speeds.items()}
    first = {k: info["first_losses"] for k, (_, info) in workers.items()}
    worst = max(abs(a - b) / abs(b) for a, b in zip(first["current"], first["baseline"], strict=True))
    ratios = [c / b for b, c in zip(speeds["baseline"], speeds["current"], strict=True)]
    return {"machine": machine, "baseline_commit": commit, "preset": "tiny", "batch": 32, "loss": "ce",
            "blocks": blocks, "steps_per_block": steps, "images_per_s": median, "per_block_images_per_s": speeds,
            "per_block_ratio": ratios, "packages": {k: info["package"] for k, (_, info) in workers.items()},
            "first_losses": first, "first_loss_max_rel_diff": worst,
            "losses_agree": worst <= LOSS_RTOL, "train_round_speedup_cpu": median["current"] / median["baseline"],
            "target": TARGET}


# Where a step's time goes: profiler op names (substrings, first match wins) -> a readable group
OP_GROUPS = (("scaled_dot_product", "attention (flash kernel, fwd + bwd)"), ("mm", "linear layers (matmul)"),
             ("convolution", "convolutions (patch embedding, head)"), ("norm", "layer / group norm"),
             ("gelu", "GELU"), ("softmax", "cross-entropy"), ("nll_loss", "cross-entropy"),
             ("copy_", "copies"), ("clone", "copies"), ("adam", "optimiser"))


def step_profile(steps: int = 10) -> dict[str, float]:
    """Share of a current ``train_round`` step's operator time in each of ``OP_GROUPS`` (the rest: "other")."""
    from torch.profiler import ProfilerActivity, profile

    trainer = speed_trainer()
    trainer.train_round(steps=3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.train_round(steps=steps)
    shares: dict[str, float] = {}
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events)
    for e in events:
        group = next((name for pattern, name in OP_GROUPS if pattern in e.key.lower()), "other")
        shares[group] = shares.get(group, 0.0) + e.self_cpu_time_total / total
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


# What the issue-14 profiling tried on the 2-core AMD EPYC (one-off measurements, interleaved in one process)
TRIED = """What was tried, keeping the maths (fp32, same model), and what it gave on this machine:

- glibc keeps freed memory (`mallopt`, now done for CPU trainers): page faults per `tiny` step 5,000 → 500,
  about 8% of a step in isolation;
- fused AdamW (now the default): 0.5 ms per step against 1.65 ms for the foreach AdamW;
- `torch.compile` (inductor; `max-autotune` no better): the model's forward + backward 163 ms against 172 ms
  eager (1.05x), `train_round` within noise of that; it costs ~30 s per process, so it stays off on the CPU;
- bf16 autocast: no faster (this CPU's bf16 matmuls do not pay for the casts), and it changes the maths;
- attention: the flash CPU kernel (20 ms per layer, forward + backward) beats explicit matmul + softmax
  with saved probabilities (22–28 ms); padding the 257 keys to 264/272/288 under a mask gains nothing,
  though 256 tokens would take 18.3 ms; a channels-last head gains nothing (the head's features are
  already channels-last views of the tokens);
- data parallelism over the two cores, the batch split in halves of 16 at one thread each: 179 ms per step
  in two Python threads and ~150 ms in two processes, against 158 ms for the batch of 32 at two threads
  (two threads already run this op mix 1.75x faster than one), before any gradient exchange;
- the rest of `train_round` (sampler, batch gather, loss bookkeeping, optimiser): ~19 ms of a 177 ms step,
  so removing all of it would give 1.12x.

Two thirds of a step are fp32 matmuls and the flash-attention kernel, already near what MKL and the
kernel reach on two cores; with the maths kept, about 1.1x is the ceiling seen here, so the 1.3x
target is not met. The sync-free step and its CUDA graph are aimed at the GPU (see "Training speed
on the GPU").
"""


def report(data: dict) -> str:
    """The RESULTS.md section: the ratio against the target, per-block figures, and where the time goes."""
    m, speed = data["machine"], data["images_per_s"]
    met = "met" if data["train_round_speedup_cpu"] >= data["target"] else "**not met**"
    ratios = data["per_block_ratio"]
    rows = "\n".join(f"| {group} | {100 * share:.1f}% |" for group, share in data["step_profile"].items())
    return (f"Written by `python -m benchmarks.train_speed` (docs/train_speed.json) on {m['cpu']}, {m['cores']} "
            f"cores, {m['torch_threads']} torch threads, torch {m['torch']}; load average {m['load_average_1min']} "
            f"before the run.\n\n"
            f"`train_round`, `tiny`, batch 32, CE, no augmentation: **{speed['current']:.1f} images/s** against "
            f"{speed['baseline']:.1f} for commit {data['baseline_commit']} (medians of {data['blocks']} blocks of "
            f"{data['steps_per_block']} steps each, the two versions alternating block by block): "
            f"`train_round_speedup_cpu` = **{data['train_round_speedup_cpu']:.2f}** (target ≥ {data['target']}: "
            f"{met}). Per-block ratios ranged {min(ratios):.2f}–{max(ratios):.2f}. The first {FIRST_STEPS} losses "
            f"of the two versions agree to {data['first_loss_max_rel_diff']:.1e} (relative).\n\n"
            f"Where a current step's operator time goes (profiler, 10 steps):\n\n| operators | share |\n|---|---|\n"
            f"{rows}\n\n{TRIED}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare with (default: %(default)s)")
    parser.add_argument("--blocks", type=int, default=FULL["blocks"], help="timed blocks per version")
    parser.add_argument("--quick", action="store_true", help="one short round; not a measurement")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        serve(spec.pop("source"), **spec)
        return 0
    from adaptive_de.files import atomic_write_text
    from benchmarks.runs import DOCS, update_results_section

    result = compare(args.baseline, **(QUICK if args.quick else {**FULL, "blocks": args.blocks}))
    result["step_profile"] = step_profile(2 if args.quick else 10)
    print(f"train_round_speedup_cpu {result['train_round_speedup_cpu']:.3f} (target >= {TARGET}); first losses "
          f"agree to {result['first_loss_max_rel_diff']:.1e}")
    print("step profile: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in result["step_profile"].items()))
    if args.quick:
        return 0
    atomic_write_text(DOCS / "train_speed.json", json.dumps(result, indent=2) + "\n")
    update_results_section(SECTION, report(result))
    from benchmarks.__main__ import record
    record({"train_round_speedup_cpu": result["train_round_speedup_cpu"]}, by="benchmarks.train_speed",
           machine=result["machine"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

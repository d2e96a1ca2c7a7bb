"""The Ray backend's cost: a population's rounds with members as local Ray actors against in-process.

    python -m benchmarks.ray_overhead [--repeats 2] [--rounds 2]

Both backends play the same rounds (the ``cpu`` preset's population, fixed random actions, exploit
every round) from the same warm-up; the two alternate, ``repeats`` times each, and the figure is the
ratio of the median wall times of the rounds (building the members is timed apart). In-process, the
members train one after another with all torch threads; with Ray, each member is an actor with
``cores / members`` CPUs and one torch thread, and a round's members train at the same time.
Adds ``ray_overhead_ratio`` to docs/benchmarks.json (target ≤ ``TARGET``). Time it on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

TARGET = 1.15


def timed_run(backend: str, rounds: int, seed: int = 0) -> dict[str, float]:
    """Build a ``cpu``-preset population on ``backend`` and play ``rounds`` rounds; seconds for each part."""
    from envs import PopulationEnv

    members = 4
    options = {"num_cpus": (os.cpu_count() or 1) / members} if backend == "ray" else {}
    start = time.perf_counter()
    env = PopulationEnv("cpu", rounds=rounds, exploit_every=1, backend=backend, backend_options=options)
    built = time.perf_counter()
    rng = np.random.default_rng(seed)
    env.reset()
    for _ in range(rounds):
        env.step(rng.integers(env.action_space.nvec, size=(env.num_envs, len(env.action_space.nvec))))
    done = time.perf_counter()
    env.close()
    return {"build_s": built - start, "rounds_s": done - built}


def compare(repeats: int, rounds: int) -> dict:
    import ray

    from benchmarks.machine import machine_info

    machine = machine_info()  # the load average before the run
    ray.init(include_dashboard=False, log_to_driver=False)  # started once, outside the timings
    try:
        times: dict[str, list[dict[str, float]]] = {"inprocess": [], "ray": []}
        for r in range(repeats):
            for backend in times:
                times[backend].append(timed_run(backend, rounds))
                print(f"repeat {r + 1}/{repeats} {backend:>9}: {times[backend][-1]['rounds_s']:.1f} s of rounds, "
                      f"{times[backend][-1]['build_s']:.1f} s to build")
    finally:
        ray.shutdown()
    median = {k: statistics.median(t["rounds_s"] for t in v) for k, v in times.items()}
    return {"machine": machine, "preset": "cpu", "members": 4, "rounds": rounds, "repeats": repeats,
            "seconds": times, "rounds_s_median": median, "ray_overhead_ratio": median["ray"] / median["inprocess"],
            "target": TARGET}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    import json

    from adaptive_de.files import atomic_write_text
    from benchmarks.__main__ import record
    from benchmarks.runs import DOCS

    result = compare(args.repeats, args.rounds)
    print(f"ray_overhead_ratio {result['ray_overhead_ratio']:.3f} (target <= {TARGET})")
    atomic_write_text(DOCS / "ray_overhead.json", json.dumps(result, indent=2) + "\n")
    record({"ray_overhead_ratio": result["ray_overhead_ratio"]}, by="benchmarks.ray_overhead",
           machine=result["machine"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

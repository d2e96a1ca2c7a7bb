"""A new user's first run, timed: ``python -m adaptive_de.run --agent ppo`` with every default, from an empty cache.

    python -m benchmarks.default_run [--out docs]

The synthetic data are rendered and the CE warm-up trained inside the timed run, as on a fresh
machine (the cache is a temporary folder). The target (issue 12): the whole run, the comparison
methods included, within 15 minutes on the 2-core CPU. Time it on a quiet machine.

Writes OUT/default_run.json (the wall time, each method's test mean F1, inner steps and seconds) and,
with ``--out docs``, a RESULTS.md section.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

from adaptive_de import run
from adaptive_de.errors import run_cli
from benchmarks.machine import machine_info
from benchmarks.runs import DOCS, update_results_section, write_json

TARGET_MINUTES = 15
SECTION = "The default run's time (issue 12)"


def timed_default_run() -> dict[str, Any]:
    """Run ``run.main(["--agent", "ppo"])`` in a temporary run folder and cache; its wall time and results."""
    machine = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        # an empty cache: nothing rendered or trained before
        with mock.patch.dict(os.environ, {"ADAPTIVE_DE_CACHE": str(Path(tmp) / "cache")}):
            start = time.perf_counter()
            code = run.main(["--agent", "ppo", "--logdir", str(Path(tmp) / "runs"), "--name", "default"])
            seconds = time.perf_counter() - start
        if code:
            raise RuntimeError(f"the default run failed with exit code {code}")
        results = json.loads((Path(tmp) / "runs" / "default" / "results.json").read_text())
    methods = {name: {k: row[k] for k in ("test_mean_f1", "compute_inner_steps", "wall_seconds")}
               for name, row in results["methods"].items()}
    return {"machine": machine, "command": "python -m adaptive_de.run --agent ppo", "wall_seconds": round(seconds, 1),
            "target_minutes": TARGET_MINUTES, "methods": methods}


def report(data: dict[str, Any]) -> str:
    m, minutes = data["machine"], data["wall_seconds"] / 60
    met = "met" if minutes <= data["target_minutes"] else "NOT met"
    rows = "\n".join(f"| {name} | {100 * r['test_mean_f1']:.2f} | {r['compute_inner_steps']:,} | "
                     f"{r['wall_seconds']:.0f} |" for name, r in data["methods"].items())
    return (f"Written by `python -m benchmarks.default_run` (docs/default_run.json) on {m['cpu']}, {m['cores']} cores, "
            f"load average {m['load_average_1min']} before the run: `{data['command']}` with every default, from an "
            "empty cache (the synthetic data rendered and the CE warm-up trained inside the timed run).\n\n"
            f"Wall time **{minutes:.1f} min** (target <= {data['target_minutes']} min): **{met}**.\n\n"
            "| method | test mean F1 (%) | inner steps | population run (s) |\n|---|---|---|---|\n" + rows + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    data = timed_default_run()
    write_json("default_run.json", data, folder=args.out)
    print(report(data))
    if args.out == DOCS:
        update_results_section(SECTION, report(data))


if __name__ == "__main__":
    sys.exit(run_cli(main))

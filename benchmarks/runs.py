"""Shared pieces of the training studies: one scored training run, and result files."""
from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm import tqdm

from adaptive_de.config import TrainConfig
from adaptive_de.data import FaceParsingSet, load
from adaptive_de.errors import UserError
from adaptive_de.files import atomic_path, atomic_write_text
from adaptive_de.trainer import InnerTrainer

DOCS = Path("docs")
T = TypeVar("T")


def study_parser(doc: str) -> argparse.ArgumentParser:
    """The options every study shares: ``--quick`` (a smoke check) and ``--threads``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps, one seed (smoke check, not a result)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default); 1 lets two studies share a 2-core CPU")
    parser.add_argument("--jobs", type=int, default=1,
                        help="training runs at once, in worker processes of 1 torch thread each (default 1)")
    return parser


def apply_threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)


def map_runs(fn: Callable[..., T], tasks: list[tuple], jobs: int = 1) -> list[T]:
    """``[fn(*task) for task in tasks]``, in ``jobs`` worker processes when ``jobs > 1``.

    On a small CPU, independent single-threaded runs side by side use the cores better than one
    run's intra-op threads (a tiny model's kernels are too short to split well). Workers are
    spawned, so ``fn`` must be a module-level function; results come back in task order. A bar on
    stderr counts the finished tasks: a study's runs take minutes each, and it may run for hours.
    """
    with tqdm(total=len(tasks), desc=fn.__name__, unit="run") as bar:
        if jobs <= 1:
            results = []
            for task in tasks:
                results.append(fn(*task))
                bar.update()
            return results
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(1,)) as pool:
            futures = [pool.submit(fn, *task) for task in tasks]
            for future in as_completed(futures):
                future.result()  # a failed task stops the study now, not after the others
                bar.update()
            return [future.result() for future in futures]


@functools.cache  # a process (or --jobs worker) running several studies' runs reads the cache once
def load_splits(spec: str, size: int = 64, splits: tuple[str, ...] = ("train", "val", "test")) -> dict:
    return {s: load(spec, s, size=size) for s in splits}


def scored_run(config: TrainConfig, data: dict[str, FaceParsingSet], policy=None, *, eval_every: int = 0,
               eval_split: str = "val", eval_limit: int | None = 200) -> dict[str, Any]:
    """Train ``config.steps`` steps under ``policy``; return test scores, wall time and a val curve.

    ``wall_seconds`` counts training only (the curve's evaluations are excluded), so it is the
    figure to compare with a time budget.
    """
    trainer = InnerTrainer(config, data=data, splits=tuple(data))
    curve, train_seconds = [], 0.0
    every = eval_every or config.steps
    while trainer.step < config.steps:
        start = time.perf_counter()
        trainer.train_round(policy, steps=min(every, config.steps - trainer.step))
        train_seconds += time.perf_counter() - start
        if eval_every:
            scores = trainer.evaluate(eval_split, limit=eval_limit)
            curve.append({"step": trainer.step, "wall_seconds": round(train_seconds, 2),
                          "mean_f1": scores["mean_f1"]})
    test = trainer.evaluate("test")
    return {"test_mean_f1": test["mean_f1"], "test_f1": finite(test["f1"]), "test_fp_rate": test["fp_rate"],
            "test_reward": test["reward"], "wall_seconds": round(train_seconds, 2), "curve": curve,
            "images_per_s": round(config.steps * config.batch_size / max(train_seconds, 1e-9), 1)}


# Two-sided 95% Student-t quantiles by degrees of freedom (n seeds - 1); beyond the table, the normal's.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def mean_ci95(values: list[float]) -> tuple[float, list[float] | None]:
    """The mean of per-seed ``values`` and its 95% t-interval (``None`` from one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    half = T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, [mean - half, mean + half]


def fmt_mean_ci(values: list[float]) -> str:
    """``mean [95% CI]`` of ``values`` (``mean_ci95``), the interval left out where one value gives none."""
    mean, ci = mean_ci95(values)
    return f"{mean:+.2f}" + ("" if ci is None else f" [{ci[0]:+.2f}, {ci[1]:+.2f}]")


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """Per-seed gaps a - b in points, their mean and the 95% t-interval of the mean (paired by seed; ``None``
    from one seed)."""
    gaps = [100 * (x - y) for x, y in zip(a, b, strict=True)]
    mean, ci95 = mean_ci95(gaps)
    return {"gaps": gaps, "mean": mean, "ci95": ci95}


def fmt_gap(gap: dict[str, Any], per: str = "seed") -> str:
    """``mean [95% CI] (per seed: ...)``; ``per`` names what each of ``gap["gaps"]`` is one of."""
    interval = f"[one {per}: no interval]" if gap["ci95"] is None else "[{:+.2f}, {:+.2f}]".format(*gap["ci95"])
    return (f"{gap['mean']:+.2f} {interval} (per {per}: "
            + ", ".join(f"{g:+.2f}" for g in gap["gaps"]) + ")")


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt_pct(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{100 * m:.2f} ± {100 * s:.2f}"


def write_json(name: str, data: Any, folder: Path = DOCS) -> Path:
    path = folder / name
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")  # NaN is not JSON: use finite()
    return path


def finite(values: list[float]) -> list[float | None]:
    """Per-class F1 lists carry NaN for classes absent from a split; JSON wants null."""
    return [None if (v is None or math.isnan(v)) else v for v in values]


def save_figure(fig, name: str, folder: Path = DOCS) -> Path:
    path = folder / name
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def update_results_section(title: str, body: str, path: Path = DOCS / "RESULTS.md") -> None:
    """Replace (or append) the ``## title`` section of docs/RESULTS.md, leaving the others alone."""
    header = "# Results\n\nMeasured figures; each section is written by the script it names.\n"
    text = path.read_text() if path.exists() else header
    marker = f"## {title}\n"
    section = marker + "\n" + body.strip() + "\n"
    if marker in text:
        head, rest = text.split(marker, 1)
        tail = rest.split("\n## ", 1)
        text = head + section + ("\n## " + tail[1] if len(tail) > 1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    atomic_write_text(path, text)


def tagged_files(stem: str, section: str, tag: str | None) -> tuple[str, str, str]:
    """A study's results file, plot and RESULTS section: ``stem``'s own for ``tag`` None, or kept apart as
    ``stem_TAG.json``, ``stem_TAG.png`` and the section titled with the tag."""
    stem = f"{stem}_{tag}" if tag else stem
    return f"{stem}.json", f"{stem}.png", f"{section}, `{tag}`" if tag else section


def publish_study(name: str, out: Path, measure: Callable[[], dict[str, Any]] | None, *,
                  plot: Callable[[dict[str, Any], Path], None], report: Callable[[dict[str, Any]], str],
                  section: str) -> dict[str, Any]:
    """A study's common tail: ``measure()`` and write ``OUT/name`` (with ``measure`` None, as ``--report`` asks, read
    it back instead), plot into ``out``, print the report and, when ``out`` is docs/, update its RESULTS.md section."""
    if measure is None:
        try:
            data = json.loads((out / name).read_text())
        except (OSError, ValueError):
            raise UserError(f"{out / name} is missing or not JSON: run the study without --report first") from None
    else:
        data = measure()
        out.mkdir(parents=True, exist_ok=True)
        write_json(name, data, folder=out)
    plot(data, out)
    text = report(data)
    print(text)
    if out == DOCS:
        update_results_section(section, text)
    return data

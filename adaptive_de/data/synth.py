"""Write the synthetic face-parsing benchmark to disk in the LaPa folder layout.

``python -m adaptive_de.data.synth --out DIR`` writes ``DIR/{train,val,test}/{images,labels}/<stem>.png``:
RGB images and single-channel label maps of LaPa class ids, both lossless PNG so a reader gets the
rendered tensors back exactly. ``load("lapa:DIR", split)`` reads the result.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from adaptive_de.data.synthetic import Nuisances, render_faces
from adaptive_de.errors import CliParser, UserError, run_cli

SPLITS = ("train", "val", "test")
DEFAULT_COUNTS = {"train": 2000, "val": 500, "test": 1000}
MIN_SIZE = 16
CHUNK = 256  # faces per render_faces call: bounds memory while keeping calls batched


def file_stem(index: int) -> str:
    """The file stem of face ``index`` (shared by its image and label)."""
    return f"{index:06d}"


def check_params(*, size: int, counts: dict[str, int], shift: float) -> None:
    """Raise ``UserError`` for values the generator cannot use."""
    if size < MIN_SIZE:
        raise UserError(f"size must be at least {MIN_SIZE}, got {size}")
    for split, n in counts.items():
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if n < 0:
            raise UserError(f"{split} count must be >= 0, got {n}")
    # 0 gives val/test the train distribution, 1 the full shift; the generator knows nothing beyond
    if not 0.0 <= shift <= 1.0:
        raise UserError(f"shift must be in [0, 1], got {shift}")


def render_chunks(n: int, *, size: int, seed: int, split: str, shift: float, nuisances: Nuisances | None = None
                  ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield ``(start, images, labels)`` for faces ``0..n-1`` of a split, ``CHUNK`` at a time, with a progress bar;
    ``nuisances`` overrides the split's ranges (``render_faces``)."""
    with tqdm(total=n, desc=f"synth {split}", unit="face", disable=None) as bar:
        for start in range(0, n, CHUNK):
            images, labels = render_faces(min(CHUNK, n - start), size=size, seed=seed, split=split, shift=shift,
                                          start=start, nuisances=nuisances)
            yield start, images, labels
            bar.update(len(images))


def render_split(n: int, *, size: int, seed: int, split: str, shift: float, nuisances: Nuisances | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``n`` faces of a split: uint8 images [n,3,size,size] and labels [n,size,size]; ``nuisances`` overrides
    the split's ranges."""
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    labels = torch.empty((n, size, size), dtype=torch.uint8)
    for start, im, lb in render_chunks(n, size=size, seed=seed, split=split, shift=shift, nuisances=nuisances):
        images[start:start + len(im)] = im
        labels[start:start + len(lb)] = lb
    return images, labels


def _write_split(folder: Path, n: int, *, size: int, seed: int, split: str, shift: float,
                 pool: ThreadPoolExecutor) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()

    def save(index: int, image: torch.Tensor, label: torch.Tensor) -> None:
        stem = file_stem(index)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / "images" / f"{stem}.png")
        Image.fromarray(label.numpy()).save(folder / "labels" / f"{stem}.png")

    for start, images, labels in render_chunks(n, size=size, seed=seed, split=split, shift=shift):
        # list() so an encoding error surfaces here rather than being dropped with the iterator
        list(pool.map(save, range(start, start + len(images)), images, labels))


def _prepare_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and is not empty (pass --force to replace it)")


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` folder onto ``out``, replacing an existing ``out`` only at the last moment."""
    if not out.exists():
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
    os.rename(out, old / out.name)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def write_dataset(out: str | os.PathLike, *, size: int = 64, counts: dict[str, int] | None = None, seed: int = 0,
                  shift: float = 1.0, force: bool = False) -> Path:
    """Render the synthetic splits and write them to ``out`` in the LaPa layout; return ``out``.

    ``counts`` maps split name → number of faces (default 2000/500/1000). Everything is written into a
    hidden sibling folder that is renamed onto ``out`` only when complete, so an interrupted run leaves
    nothing behind. An existing non-empty ``out`` is refused unless ``force``.
    """
    out = Path(out)
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    check_params(size=size, counts=counts, shift=shift)
    _prepare_target(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as e:
        raise UserError(f"cannot write to {out.parent}: {e.strerror}") from e
    try:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for split, n in counts.items():
                _write_split(tmp / split, n, size=size, seed=seed, split=split, shift=shift, pool=pool)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see ``--help``."""
    parser = CliParser(prog="python -m adaptive_de.data.synth",
                       description="Write the synthetic face-parsing data set in the LaPa folder layout.")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    for split in SPLITS:
        parser.add_argument(f"--{split}", type=int, default=DEFAULT_COUNTS[split],
                            help=f"faces in the {split} split (default {DEFAULT_COUNTS[split]})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", type=float, default=1.0,
                        help="train→val/test distribution shift in [0, 1] (default 1.0)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    args = parser.parse_args(argv)
    counts = {split: getattr(args, split) for split in SPLITS}
    out = write_dataset(args.out, size=args.size, counts=counts, seed=args.seed, shift=args.shift, force=args.force)
    print(f"wrote {sum(counts.values())} faces to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

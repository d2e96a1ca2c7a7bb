"""Draw a few samples of a data set with their label overlays into one PNG.

``python -m adaptive_de.data.preview SPEC --split train --out grid.png [--n 16] [--size 64] [--seed 0]
[--policy none|randaugment[:N,M]|trivialaugment|levels:L1,...,L16]``
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset

from adaptive_de.data import draw
from adaptive_de.data.folders import open_dataset
from adaptive_de.data.labels import LabelScheme
from adaptive_de.errors import CliParser, UserError, run_cli

Policy = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def pick(data: Dataset, *, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples chosen at random (reproducibly for ``seed``): uint8 images [n,3,H,W], labels [n,H,W]."""
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    samples = [data[i] for i in order]
    return torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples])


def preview(images: torch.Tensor, labels: torch.Tensor, scheme: LabelScheme, *,
            policy: Policy | None = None, seed: int = 0) -> torch.Tensor:
    """The preview picture (uint8 [3,H,W]) of a batch; ``policy`` (an augmentation policy) is applied first if given."""
    if policy is not None:
        images, labels = policy(images, labels, generator=torch.Generator().manual_seed(seed))
    return draw.preview_grid(images, labels, scheme)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see ``--help``."""
    parser = CliParser(prog="python -m adaptive_de.data.preview",
                       description="Draw samples of a data set with coloured label overlays into a PNG grid.")
    parser.add_argument("spec",
                        help="data set: synth[:key=value,...], lapa:DIR, celebamask:DIR or folder:DIR[,key=value]")
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", required=True, type=Path, help="PNG file to write")
    parser.add_argument("--n", type=int, default=16, help="number of samples (default 16)")
    parser.add_argument("--size", type=int, default=64, help="resize samples to this side (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="which samples are picked, and the augmentation's draws")
    parser.add_argument("--policy", default=None,
                        help="augment first: none | randaugment[:N,M] | trivialaugment | levels:L1,...,L16 (op order "
                             "as adaptive_de.augment.OPS)")
    args = parser.parse_args(argv)
    from adaptive_de.augment import make_policy  # augmentation sits above the data layer; only this CLI needs it

    data = open_dataset(args.spec, args.split, size=args.size)
    policy = make_policy(args.policy, data.scheme) if args.policy else None
    images, labels = pick(data, n=args.n, seed=args.seed)
    picture = preview(images, labels, data.scheme, policy=policy, seed=args.seed)
    try:
        draw.save_png(picture, args.out)
    except OSError as e:
        raise UserError(f"cannot write {args.out}: {e.strerror}") from e
    print(f"wrote {args.out} ({picture.shape[2]}x{picture.shape[1]}, {len(images)} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

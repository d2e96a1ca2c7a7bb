"""Synthetic identities: does CosFace training separate faces by identity? 1:1 verification on new identities.

    python -m benchmarks.identity [--quick] [--out docs/identity.json] [--sheet docs/identity_pairs.png]

Identities come from the synthetic generator: a face's identity traits (shape, skin and hair
colour, hair style, feature geometry) are drawn per identity id, while pose, light, background,
expression and camera vary per face (``render_faces(identities=...)``). The ``tiny`` Face
Transformer is trained with a CosFace head on the training identities (split ``val``), then
verified on identities it never saw (split ``test``, same nuisance ranges): every same-identity
pair and as many random different-identity pairs, scored by the cosine of the embeddings. The
accuracy is LFW-style 10-fold (threshold chosen on nine folds, accuracy on the tenth); the ROC
AUC needs no threshold. The untrained network (same initialisation) and raw pixels are the
baselines. ``--quick`` is a smoke run too small to be a measurement.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from adaptive_de.data.draw import grid, save_png
from adaptive_de.data.synthetic import render_faces
from adaptive_de.files import atomic_write_text
from adaptive_de.losses.cosface import CosFace
from adaptive_de.models import build_model
from adaptive_de.trainer import normalise, param_groups, warmup_cosine
from benchmarks.machine import machine_info
from benchmarks.runs import update_results_section


@dataclass(frozen=True)
class Settings:
    """What one run trains and evaluates."""

    preset: str = "tiny"
    size: int = 64
    shift: float = 0.25  # moderate nuisances: a quarter of the way from the narrow train range to the wide test range
    train_ids: int = 100
    train_per_id: int = 16
    test_ids: int = 40
    test_per_id: int = 8
    steps: int = 180
    batch: int = 64
    lr: float = 2e-3
    warmup: float = 0.1  # fraction of the steps
    weight_decay: float = 0.05
    s: float = 64.0  # CosFace scale and margin (the reference defaults)
    m: float = 0.35
    folds: int = 10
    seed: int = 0


QUICK = Settings(train_ids=8, train_per_id=4, test_ids=6, test_per_id=4, steps=4, batch=16, folds=4)


def identity_faces(n_ids: int, per_id: int, *, split: str, settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_id`` faces of each of ``n_ids`` identities of a split: uint8 images [N, 3, H, W], ids [N] in 0..n_ids-1."""
    ids = torch.arange(n_ids).repeat_interleave(per_id)
    images, _ = render_faces(len(ids), size=settings.size, seed=settings.seed, split=split, shift=settings.shift,
                             identities=ids)
    return images, ids


def train_recognition(model: nn.Module, head: CosFace, images: torch.Tensor, ids: torch.Tensor, *, steps: int,
                      batch: int, lr: float, warmup: float, weight_decay: float, seed: int) -> list[float]:
    """Train ``model`` + ``head`` with CosFace cross-entropy on uint8 ``images`` labelled ``ids``; returns step losses.

    AdamW (no decay on 1-d parameters and token embeddings), linear warm-up then cosine decay;
    batches walk through a fresh permutation every epoch; random horizontal flips, as in the
    reference recipe (a mirrored face is the same person).
    """
    gen = torch.Generator().manual_seed(seed)
    params = nn.ModuleList([model, head])
    opt = torch.optim.AdamW(param_groups(params, weight_decay), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, steps, warmup))
    model.train()
    order, pos, losses = torch.randperm(len(ids), generator=gen), 0, []
    for _ in range(steps):
        if pos + batch > len(order):
            order, pos = torch.randperm(len(ids), generator=gen), 0
        idx = order[pos:pos + batch]
        pos += batch
        x = normalise(images[idx])
        flip = torch.rand(len(idx), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        loss = F.cross_entropy(head(model(x), ids[idx]), ids[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """Embeddings [N, D] of uint8 ``images`` in eval mode."""
    model.eval()
    return torch.cat([model(normalise(images[i:i + batch])) for i in range(0, len(images), batch)])


def verification_pairs(ids: torch.Tensor,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every same-identity pair (i < j) and as many distinct different-identity pairs drawn at random.

    Returns indices ``i``, ``j`` and ``same`` (bool), positives first.
    """
    i, j = torch.triu_indices(len(ids), len(ids), offset=1)
    same = ids[i] == ids[j]
    neg = (~same).nonzero()[:, 0]
    n_pos = int(same.sum())
    if len(neg) < n_pos:
        raise ValueError(f"{len(neg)} different-identity pairs cannot balance {n_pos} same-identity pairs")
    neg = neg[torch.randperm(len(neg), generator=generator)[:n_pos]]
    keep = torch.cat([same.nonzero()[:, 0], neg])
    return i[keep], j[keep], same[keep]


def roc_auc(scores: torch.Tensor, same: torch.Tensor) -> float:
    """Area under the ROC curve: the chance that a random positive outscores a random negative (ties count 1/2).

    Mann-Whitney U from average ranks, so ties between scores are handled exactly.
    """
    _, inverse, counts = torch.unique(scores.double(), return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    ranks = (ends - (counts.double() - 1) / 2)[inverse]  # 1-based average rank of each score
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("the AUC needs both positive and negative pairs")
    return float((ranks[same].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def best_threshold(scores: torch.Tensor, same: torch.Tensor) -> float:
    """The threshold ``t`` (predict "same" when score > t) with the highest accuracy on these pairs.

    Sorting once gives the accuracy of every cut: the top k scores called "same" are right for the
    positives among them and the negatives below. Cuts fall only between distinct scores, at the midpoint.
    """
    s, order = scores.double().sort(descending=True)
    pos = same[order].double()
    zero = s.new_zeros(1)
    tp, fp = torch.cat([zero, pos.cumsum(0)]), torch.cat([zero, (1 - pos).cumsum(0)])
    correct = tp + (fp[-1] - fp)  # for k = 0 .. n scores called "same"
    cut_ok = torch.ones_like(correct, dtype=torch.bool)
    cut_ok[1:-1] = s[:-1] > s[1:]
    k = int(torch.where(cut_ok, correct, -1.0).argmax())
    if k == 0:
        return float(s[0])
    if k == len(s):
        return float(s[-1]) - 1.0
    return float((s[k - 1] + s[k]) / 2)


def verify(embeddings: torch.Tensor, ids: torch.Tensor, *, folds: int = 10, seed: int = 0) -> dict:
    """1:1 verification of ``embeddings`` [N, D] with identity ``ids`` [N] by cosine similarity.

    ``accuracy`` is the mean over ``folds`` folds of the accuracy on one fold at the threshold that
    is best on the others (LFW protocol; ``accuracy_std`` its spread); ``auc`` is the ROC AUC of all pairs.
    """
    gen = torch.Generator().manual_seed(seed)
    i, j, same = verification_pairs(ids, gen)
    z = F.normalize(embeddings.double(), dim=1)
    scores = (z[i] * z[j]).sum(1)
    fold_of = torch.randperm(len(scores), generator=gen) % folds
    accs, thresholds = [], []
    for f in range(folds):
        test = fold_of == f
        t = best_threshold(scores[~test], same[~test])
        accs.append(float(((scores[test] > t) == same[test]).double().mean()))
        thresholds.append(t)
    accs_t = torch.tensor(accs)
    return {"accuracy": float(accs_t.mean()), "accuracy_std": float(accs_t.std()) if folds > 1 else 0.0,
            "auc": roc_auc(scores, same), "threshold": sum(thresholds) / folds,
            "pairs": {"same": int(same.sum()), "different": int((~same).sum())}}


def identity_sheet(images: torch.Tensor, ids: torch.Tensor, *, rows: int = 4, cols: int = 6) -> torch.Tensor:
    """uint8 [3, H, W]: ``cols`` faces of each of the first ``rows`` identities, one identity per row."""
    cols = min(cols, int(torch.bincount(ids).min()))  # every row full, so rows and identities line up
    tiles = torch.cat([images[ids == k][:cols] for k in ids.unique()[:rows]])
    return grid(tiles, ncol=cols)


def run(settings: Settings, sheet_path: str | None = None) -> dict:
    """Render, train, verify; returns the report (and saves the identity sheet to ``sheet_path`` if given)."""
    start = time.perf_counter()
    train_images, train_ids = identity_faces(settings.train_ids, settings.train_per_id, split="val", settings=settings)
    test_images, test_ids = identity_faces(settings.test_ids, settings.test_per_id, split="test", settings=settings)
    if sheet_path:
        save_png(identity_sheet(test_images, test_ids), sheet_path)
    render_s = time.perf_counter() - start

    torch.manual_seed(settings.seed)
    model = build_model(settings.preset, num_classes=0, task="recognition")
    head = CosFace(model.embed_dim, settings.train_ids, s=settings.s, m=settings.m)

    def scores(embeddings: torch.Tensor) -> dict:
        return verify(embeddings, test_ids, folds=settings.folds, seed=settings.seed)

    results = {"pixels": scores(normalise(test_images).flatten(1)), "untrained": scores(embed(model, test_images))}
    start = time.perf_counter()
    losses = train_recognition(model, head, train_images, train_ids, steps=settings.steps, batch=settings.batch,
                               lr=settings.lr, warmup=settings.warmup, weight_decay=settings.weight_decay,
                               seed=settings.seed)
    train_s = time.perf_counter() - start
    results["trained"] = scores(embed(model, test_images))
    return {"machine": machine_info(), "settings": asdict(settings), "results": results,
            "train_loss": [round(x, 4) for x in losses],
            "seconds": {"render": round(render_s, 1), "train": round(train_s, 1),
                        "per_step": round(train_s / max(1, settings.steps), 3)}}


def write_results_section(report: dict) -> None:
    """The identity section of docs/RESULTS.md, from a report of ``run``."""
    st = report["settings"]
    rows = ["| embedding | 10-fold verification accuracy | ROC AUC |", "|---|---|---|"]
    rows += [f"| {name} | {r['accuracy']:.3f} ± {r['accuracy_std']:.3f} | {r['auc']:.3f} |"
             for name, r in report["results"].items()]
    update_results_section("CosFace on synthetic identities (issue 3)", (
        f"Written by `python -m benchmarks.identity`: `{st['preset']}` (task `recognition`) + CosFace(s={st['s']}, "
        f"m={st['m']}), {st['train_ids']} training identities × {st['train_per_id']} faces, {st['steps']} steps of "
        f"batch {st['batch']}; verification on {st['test_ids']} held-out identities × {st['test_per_id']} (all "
        "same-identity pairs and as many random different-identity pairs; cosine similarity). `pixels` is the "
        "raw-pixel cosine baseline.\n\n" + "\n".join(rows) + "\n\n![identities](identity_pairs.png)\n"))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (too small to be a measurement)")
    parser.add_argument("--out", default="docs/identity.json", help="the JSON report ('' to skip)")
    parser.add_argument("--sheet", default="docs/identity_pairs.png", help="the identity picture ('' to skip)")
    parser.add_argument("--steps", type=int, help="training steps (default: the settings')")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    if args.steps is not None:
        settings = replace(settings, steps=args.steps)

    report = run(settings, args.sheet or None)
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"{settings.train_ids} training identities x {settings.train_per_id}, {settings.steps} steps "
          f"({report['seconds']['train']:.0f} s); verification on {settings.test_ids} new identities x "
          f"{settings.test_per_id}:")
    print(f"{'embedding':<10} {'accuracy':>16} {'AUC':>7}")
    for name, r in report["results"].items():
        print(f"{name:<10} {r['accuracy']:>9.3f} ± {r['accuracy_std']:.3f} {r['auc']:>7.3f}")
    if args.out and not args.quick:
        write_results_section(report)
    return report


if __name__ == "__main__":
    main()

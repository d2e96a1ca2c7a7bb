"""Supervised (and reward-tuned) training of the face-parsing model, with a per-class F1 report.

    python -m adaptive_de.train --model tiny --data synth --loss ce --steps 1500
    python -m adaptive_de.train --loss ce_then_reinforce --reward f1_fp --reward-kw w=0.3

Prints a progress bar (loss, and reward once REINFORCE tuning starts), val scores along the way,
and at the end a table of per-class F1 on val and test in the face-parsing literature's protocol.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from .augment import make_policy
from .config import LOSSES, TrainConfig, parse_kv
from .errors import CliParser, run_cli
from .files import atomic_write_text
from .losses.reinforce import BASELINES, CREDITS, REDUCTIONS
from .models import CNN, VIT_PRESETS
from .trainer import InnerTrainer


def build_parser() -> CliParser:
    d = TrainConfig()
    p = CliParser(prog="python -m adaptive_de.train", description=__doc__.splitlines()[0])
    p.add_argument("--model", default=d.model,
                   help=f"model: a Face Transformer preset ({', '.join(VIT_PRESETS)}), {CNN} (the ResNet-18 U-Net), "
                        "or package.module:factory (factory(num_classes=N) returns an nn.Module)")
    p.add_argument("--head", default=None, help="Face Transformer parsing head: linear or progressive")
    p.add_argument("--encoder-weights", default=None, metavar="PATH",
                   help=f"{CNN}: a torchvision resnet18 ImageNet state dict (.pth) for its encoder")
    p.add_argument("--data", default=d.data, help="data spec: synth | lapa:DIR | celebamask:DIR | folder:DIR[,k=v,...]")
    p.add_argument("--size", type=int, default=None, help="image size (default: the preset's)")
    p.add_argument("--loss", default=d.loss, choices=LOSSES)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--tune-from", type=float, default=d.tune_from,
                   help="ce_then_reinforce: fraction of the steps trained with CE first")
    p.add_argument("--tune-lr-factor", type=float, default=d.tune_lr_factor)
    p.add_argument("--reward", default=d.reward, help="reward spec: a registered name or package.module:function")
    p.add_argument("--reward-kw", nargs="*", default=[], metavar="K=V", help="reward parameters, e.g. w=0.3")
    p.add_argument("--num-samples", type=int, default=d.num_samples, help="REINFORCE samples per image")
    p.add_argument("--baseline", default=d.baseline, choices=BASELINES)
    p.add_argument("--credit", default=d.credit, choices=("auto", *CREDITS),
                   help="REINFORCE credit: class (per-class advantages per pixel), image (one per sample), or auto "
                        "(class where the reward splits by class)")
    p.add_argument("--reduction", default=d.reduction, choices=REDUCTIONS,
                   help="REINFORCE log-probability over pixels: sum (the whole mask) or mean (the seed's)")
    p.add_argument("--reward-weight", type=float, default=d.reward_weight, help="weight of the REINFORCE term")
    p.add_argument("--temperature", type=float, default=d.temperature,
                   help="REINFORCE samples from softmax(logits / temperature)")
    p.add_argument("--entropy-weight", type=float, default=d.entropy_weight)
    p.add_argument("--ce-weight", type=float, default=d.ce_weight, help="cross-entropy mixed into REINFORCE")
    p.add_argument("--policy", default="none", help="augmentation: none | randaugment[:N,M] | trivialaugment | "
                                                     "levels:l1,...,l16")
    p.add_argument("--sampler", default="uniform", choices=("uniform", "class_balanced", "loss_prioritised"))
    p.add_argument("--eval-every", type=int, default=0, help="score val every N steps (0: a few times per run)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model (default: on CUDA only, where it pays)")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="replay each cross-entropy step as one CUDA graph (default: on CUDA)")
    p.add_argument("--out", default=None, help="write the final scores as JSON here")
    return p


def config_from_args(args) -> TrainConfig:
    return TrainConfig(model=args.model, head=args.head, encoder_weights=args.encoder_weights, data=args.data,
                       image_size=args.size, loss=args.loss, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       tune_from=args.tune_from,
                       tune_lr_factor=args.tune_lr_factor, reward=args.reward, reward_kw=parse_kv(args.reward_kw),
                       num_samples=args.num_samples, baseline=args.baseline, credit=args.credit,
                       reduction=args.reduction, reward_weight=args.reward_weight, temperature=args.temperature,
                       entropy_weight=args.entropy_weight, ce_weight=args.ce_weight, seed=args.seed,
                       device=args.device, compile=args.compile, cuda_graph=args.cuda_graph)


def f1_table(scheme, results: dict[str, dict[str, Any]]) -> Table:
    """Per-class F1 (rows) for each split (columns), then mean F1 and FP rate, in percent."""
    table = Table(title="Face parsing F1 (%), one confusion matrix pooled over each split")
    table.add_column("class")
    for split in results:
        table.add_column(split, justify="right")
    for c, name in enumerate(scheme.classes):
        table.add_row(name, *[f"{100 * r['f1'][c]:.2f}" for r in results.values()])
    table.add_section()
    table.add_row("mean F1 (w/o background)", *[f"{100 * r['mean_f1']:.2f}" for r in results.values()], style="bold")
    table.add_row("FP rate", *[f"{100 * r['fp_rate']:.2f}" for r in results.values()])
    table.add_row("reward", *[f"{r['reward']:.4f}" for r in results.values()])
    return table


def train(trainer: InnerTrainer, policy, eval_every: int, console: Console) -> list[dict]:
    """Run all steps in rounds of ``eval_every``, scoring val after each; returns the val curve."""
    c = trainer.config
    curve = []
    with tqdm(total=c.steps, desc=f"{c.model} {c.loss}", unit="step") as bar:
        def on_step(info):
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in info.items() if k in ("loss", "reward")})
        while trainer.step < c.steps:
            if trainer.phase() == "reinforce" and trainer.step == trainer.switch_step and trainer.step > 0:
                bar.write(f"-- reward tuning phase from step {trainer.step}: REINFORCE ({c.baseline}, {trainer.credit} "
                          f"credit, K={c.num_samples}, weight {c.reward_weight:g}, + {c.ce_weight:g} x CE) on "
                          f"{trainer.reward_fn.__name__}, lr x{c.tune_lr_factor} --")
            # Rounds end at the phase switch too, so the CE model's score is on the curve.
            end = min(c.steps, trainer.step + eval_every)
            if trainer.step < trainer.switch_step < end:
                end = trainer.switch_step
            stats = trainer.train_round(policy, steps=end - trainer.step, on_step=on_step)
            val = trainer.evaluate("val")
            curve.append({"step": trainer.step, "phase": trainer.phase(trainer.step - 1),
                          "val_mean_f1": val["mean_f1"], "val_reward": val["reward"], "train_loss": stats["loss"],
                          "images_per_s": stats["images_per_s"]})
            bar.write(f"step {trainer.step:>6} [{curve[-1]['phase']}] loss {stats['loss']:.4f} "
                      f"val mean F1 {100 * val['mean_f1']:.2f}  reward {val['reward']:.4f}  "
                      f"{stats['images_per_s']:.0f} img/s")
    return curve


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    console = Console(stderr=True)
    trainer = InnerTrainer(config)
    policy = make_policy(args.policy, trainer.scheme)
    trainer.sampler.set_coefficients([float(args.sampler == s) for s in ("uniform", "class_balanced",
                                                                          "loss_prioritised")])
    console.print(f"training {config.model} on {config.data} ({len(trainer.data['train'].images)} train images, "
                  f"{trainer.image_size}px) on {trainer.device}; loss {config.loss}, augmentation {args.policy}")
    curve = train(trainer, policy, args.eval_every or max(1, config.steps // 5), console)
    results = {split: trainer.evaluate(split) for split in ("val", "test")}
    Console().print(f1_table(trainer.scheme, results))
    if args.out:
        atomic_write_text(args.out, json.dumps({"config": config.to_dict(), "curve": curve, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

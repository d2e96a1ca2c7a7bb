"""Score a run's final inner model on a data set split; prints one JSON object on stdout.

    python -m adaptive_de.evaluate runs/ppo-cpu-20250101-120000 --data lapa:/data/LaPa --split test

The model (preset, head, image size) comes from the run's ``final_model.pt``; the label scheme from
the data spec, which must have the classes the model was trained on. The JSON has ``mean_f1``
(foreground classes), ``f1`` (per class, ``null`` for a class absent from both prediction and
labels), ``fp_rate``, and ``run``, ``data``, ``split``, ``num_images``.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .config import TrainConfig, from_yaml
from .data import load
from .errors import CliParser, UserError, run_cli
from .models import default_image_size
from .trainer import InnerTrainer, load_checkpoint

FINAL_MODEL = "final_model.pt"


def build_parser() -> CliParser:
    p = CliParser(prog="python -m adaptive_de.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="a run folder written by python -m adaptive_de.run")
    p.add_argument("--data", help="data set spec: synth[:k=v,...] | lapa:DIR | celebamask:DIR "
                   "| folder:DIR[,k=v,...] (default: the run's)")
    p.add_argument("--split", default="test")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch-size", type=int, default=250)
    return p


def run_data_spec(run_dir: Path) -> str:
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"{run_dir} is not a run folder (no config.yaml)")
    env = from_yaml(config_path.read_text()).get("env") or {}
    return str(env.get("data", "synth"))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    spec = args.data or run_data_spec(run_dir)
    if not (run_dir / FINAL_MODEL).is_file():
        raise UserError(f"{run_dir} has no {FINAL_MODEL} (the run has not finished)")
    state = load_checkpoint(run_dir / FINAL_MODEL)
    try:
        config = TrainConfig.from_dict(state["config"])
    except (KeyError, TypeError) as e:
        raise UserError(f"{run_dir / FINAL_MODEL} is not a trainer state ({e})") from None
    size = config.image_size or default_image_size(config.model)
    data = load(spec, args.split, size=size)
    # The trainer is only the evaluation function's host here: its "train" split is the split being scored.
    trainer = InnerTrainer(config.replace(device=args.device, eval_batch_size=args.batch_size),
                           data={"train": data}, splits=("train",))
    try:
        trainer.model.load_state_dict(state["model"])
    except RuntimeError:
        raise UserError(f"the run's model does not fit {spec!r} ({data.scheme.name}, {data.scheme.num_classes} "
                        f"classes): it was trained on {config.data!r}") from None
    scores = {key: trainer.evaluate("train")[key] for key in ("mean_f1", "f1", "fp_rate")}
    scores = {key: [_finite(v) for v in value] if isinstance(value, list) else _finite(value)
              for key, value in scores.items()}
    print(json.dumps({"run": str(run_dir), "data": spec, "split": args.split, "num_images": len(data.images),
                      **scores}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user errors become one ``error:`` line and exit code 2."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

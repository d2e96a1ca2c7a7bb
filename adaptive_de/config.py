"""Configs as plain data: dataclasses with defaults, ``k=v`` parsing and YAML round trips."""
from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import UserError
from .losses.reinforce import BASELINES, CREDITS, REDUCTIONS

LOSSES = ("ce", "reinforce", "ce_then_reinforce")
RENAMED = {"preset": "model"}  # TrainConfig keys of earlier versions: their names now


@dataclass
class TrainConfig:
    """Everything that defines one inner training run of the face-parsing model."""

    model: str = "tiny"  # a model preset (adaptive_de.models.PRESETS: ViTs, unet-r18) or package.module:factory
    head: str | None = None  # parsing head; None: the default head
    encoder_weights: str | None = None  # unet-r18: a torchvision resnet18 state dict (.pth) for its encoder
    data: str = "synth"  # data set spec: synth | lapa:DIR | celebamask:DIR | folder:DIR[,key=value,...]
    image_size: int | None = None  # None: the model preset's size
    batch_size: int = 32
    steps: int = 1500  # planned steps: the learning-rate schedule spans them
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: float = 0.05  # fraction of a phase spent warming the learning rate up
    grad_clip: float = 1.0
    loss: str = "ce"  # ce | reinforce | ce_then_reinforce
    tune_from: float = 0.7  # ce_then_reinforce: fraction of the steps trained with CE before REINFORCE
    # The REINFORCE defaults follow the reward-tuning study (docs/RESULTS.md, issue 13): per-class credit on the
    # whole mask's log-likelihood, mixed with CE at the full learning rate, beats its CE control; the seed's
    # per-pixel mean is inert and Pinto-style pure tuning at a tenth of the learning rate loses.
    tune_lr_factor: float = 1.0  # learning rate of the REINFORCE phase relative to lr
    reward: str = "f1_fp"  # reward spec (adaptive_de.rewards.get_reward)
    reward_kw: dict[str, Any] = field(default_factory=dict)
    num_samples: int = 4  # REINFORCE samples per image
    baseline: str = "rloo"  # pair | greedy | rloo | none (greedy collapses per-class credit: the ablations)
    reduction: str = "sum"  # REINFORCE log-probability over pixels: sum (whole mask) | mean (the seed's)
    # REINFORCE credit: class (per-class advantages; needs the reward's class_terms) | image (one per sample) |
    # auto (class where the reward has class_terms, else image)
    credit: str = "auto"
    reward_weight: float = 1.0  # weight of the REINFORCE term; 0 with ce_weight 1 is the CE control arm
    temperature: float = 1.0  # REINFORCE samples from softmax(logits / temperature)
    entropy_weight: float = 0.0
    ce_weight: float = 1.0  # cross-entropy mixed into the REINFORCE loss
    policy_dropout: bool = False  # sample REINFORCE label maps with dropout on (False: the evaluated network)
    seed: int = 0
    device: str = "auto"
    compile: bool | None = None  # torch.compile the model; None: where it pays (CUDA; on CPU it gains ~5%)
    cuda_graph: bool | None = None  # replay each cross-entropy step as one CUDA graph; None: on CUDA
    eval_batch_size: int = 250

    def __post_init__(self) -> None:
        for name, choices in (("loss", LOSSES), ("baseline", BASELINES), ("reduction", REDUCTIONS),
                              ("credit", ("auto", *CREDITS))):
            if getattr(self, name) not in choices:
                raise UserError(f"unknown {name} {getattr(self, name)!r}; choose one of: {', '.join(choices)}")
        for name in ("batch_size", "steps", "num_samples", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("compile", "cuda_graph"):
            if getattr(self, name) not in (None, True, False):
                raise UserError(f"{name} must be True, False or None (auto), got {getattr(self, name)!r}")
        if not 0.0 <= self.tune_from <= 1.0:
            raise UserError(f"tune_from must be in [0, 1], got {self.tune_from}")

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        # run folders and checkpoints written before the model field was named "model" call it "preset"
        data = {RENAMED.get(k, k): v for k, v in data.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise UserError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(**data)


def parse_value(text: str) -> Any:
    """A command-line value: a Python literal (1, 0.3, True, None, 'x', [1, 2]) or else the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_kv(items: list[str] | None) -> dict[str, Any]:
    """``["w=0.3", "fp_norm=count"]`` → ``{"w": 0.3, "fp_norm": "count"}``; a malformed item is a UserError."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UserError(f"malformed key=value {item!r} (expected e.g. w=0.3)")
        out[key.strip()] = parse_value(value.strip())
    return out


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def from_yaml(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"config is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError("config must be a YAML mapping")
    return data

"""Env and run presets as plain data: how big a population run is.

``EnvConfig`` is everything that defines the task an agent faces (the inner trainer's sizes, the
data, the rewards, the inner loss, the population); ``EnvConfig.from_preset(name, **overrides)``
starts from a named preset. ``RunConfig`` is what ``python -m adaptive_de.run`` records in
``runs/<name>/config.yaml``. The single-trainer env (``envs.FaceParsingAugmentEnv``) reads the same
config and ignores the population's fields.

Presets (a population run: ``members`` trainers x ``rounds`` x ``steps_per_round`` inner steps from a
shared CE warm-up of ``pretrain`` steps; the first ``val subset`` val images give the reward, the rest
of val selects the final member):

======  =========  ===============================  =====  ========  =======  ========  ==========
preset  model      data                             batch  pretrain  members  rounds    val subset
======  =========  ===============================  =====  ========  =======  ========  ==========
smoke   tiny       synth:train=200,val=50,test=50       8        20        2  4 x 4             16
cpu     tiny       synth (64 px)                       32       600        4  6 x 20           200
gpu     small      synth:train=10000 (64 px)          128      3000        8  10 x 100          250
paper   vit-p12s8  synth (rendered at 112 px)          64      5000        8  10 x 200          250
======  =========  ===============================  =====  ========  =======  ========  ==========

The ``cpu`` preset is sized so that ``python -m adaptive_de.run --agent ppo`` (the warm-up, then one
population run for the agent and one for each of the 3 default comparison methods) fits in 15
minutes on a quiet 2-core CPU.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .config import LOSSES, TrainConfig
from .errors import UserError

STARTS = ("pretrained", "scratch")
REWARD_MODES = ("delta", "absolute", "final")


@dataclass
class EnvConfig:
    """One env task: a population run (``envs.PopulationEnv``) or a single trainer's episodes. Sizes default to
    the ``cpu`` preset. The inner trainer's own config is derived in one place, ``train_config()``; the fields
    both configs share take ``TrainConfig``'s defaults, and the REINFORCE fields the env does not name (credit,
    reduction, reward weight) are ``TrainConfig``'s."""

    preset: str = "cpu"  # the size preset the fields came from (recorded, not re-applied)
    model: str = TrainConfig.model  # model preset (adaptive_de.models.PRESETS) or package.module:factory
    data: str = TrainConfig.data  # data set spec: synth[:k=v,...] | lapa:DIR | celebamask:DIR | folder:DIR[,k=v,...]
    image_size: int | None = None  # None: the model preset's size
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr  # inner learning rate (the warm-up's; REINFORCE tuning uses lr * tune_lr_factor)
    tune_lr_factor: float = TrainConfig.tune_lr_factor
    ce_weight: float = TrainConfig.ce_weight  # cross-entropy mixed into the REINFORCE tuning loss
    num_samples: int = TrainConfig.num_samples  # REINFORCE samples per image
    eval_batch_size: int = TrainConfig.eval_batch_size
    pretrain_steps: int = 600  # CE steps of the cached start model (start="pretrained")
    rounds: int = 6  # agent steps per episode
    steps_per_round: int = 20  # inner training steps per agent step
    val_subset: int = 200  # the first N val images score every round (the reward subset)
    # The population run (envs.PopulationEnv): members trained side by side, and PBT's truncation selection.
    members: int = 4  # inner trainers in the population (the VecEnv's num_envs)
    exploit_every: int = 2  # rounds between exploits (the worst members take the best's model and optimiser)
    exploit_fraction: float = 0.25  # share of the population replaced at an exploit (at least one member)
    # Common random numbers beyond the batches: every member of a round takes the same augmentation, dropout and
    # REINFORCE draws, so the group-relative reward compares the actions, not each member's luck.
    common_draws: bool = False
    inner_loss: str = "ce_then_reinforce"  # ce | reinforce | ce_then_reinforce
    reward: str = "f1_fp"  # env reward: a reward spec scored on the val subset
    reward_kw: dict[str, Any] = field(default_factory=dict)
    inner_reward: str | None = None  # REINFORCE loss reward; None: the env reward
    inner_reward_kw: dict[str, Any] | None = None  # None: reward_kw when inner_reward is None, else {}
    start: str = "pretrained"  # pretrained | scratch
    reward_mode: str = "delta"  # delta | absolute | final
    nonfinite_penalty: float = -1.0  # reward of a round whose training loss became NaN/inf (ends the episode)
    device: str = TrainConfig.device
    cuda_graph: bool | None = TrainConfig.cuda_graph  # False: no graph per member (large models in large populations)
    seed: int = TrainConfig.seed  # model initialisation, the warm-up, and the default run/episode RNG

    def __post_init__(self) -> None:
        check_types(self)
        for name, choices in (("inner_loss", LOSSES), ("start", STARTS), ("reward_mode", REWARD_MODES)):
            if getattr(self, name) not in choices:
                raise UserError(f"unknown {name} {getattr(self, name)!r}; choose one of: {', '.join(choices)}")
        for name in ("batch_size", "num_samples", "eval_batch_size", "rounds", "steps_per_round", "val_subset"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.start == "pretrained" and self.pretrain_steps < 1:
            raise UserError(f"pretrain_steps must be at least 1 for a pretrained start, got {self.pretrain_steps}")

    @property
    def episode_steps(self) -> int:
        return self.rounds * self.steps_per_round

    def train_config(self) -> TrainConfig:
        """The inner trainer's config. From the warm-up, ``ce_then_reinforce`` tunes from the first step (the CE
        phase is the warm-up); from scratch it runs the trainer's usual CE-then-REINFORCE schedule."""
        reward, reward_kw = self.resolved_inner_reward()
        tune_from = 0.0 if self.start == "pretrained" else TrainConfig.tune_from
        return TrainConfig(model=self.model, data=self.data, image_size=self.image_size, batch_size=self.batch_size,
                           steps=self.episode_steps, lr=self.lr, loss=self.inner_loss, tune_from=tune_from,
                           tune_lr_factor=self.tune_lr_factor, ce_weight=self.ce_weight, reward=reward,
                           reward_kw=reward_kw, num_samples=self.num_samples, seed=self.seed, device=self.device,
                           cuda_graph=self.cuda_graph, eval_batch_size=self.eval_batch_size)

    def resolved_inner_reward(self) -> tuple[str, dict[str, Any]]:
        """The REINFORCE reward spec and its parameters (the env reward's unless set separately)."""
        if self.inner_reward is None:
            return self.reward, dict(self.reward_kw)
        return self.inner_reward, dict(self.inner_reward_kw or {})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_preset(cls, preset: str = "cpu", **overrides: Any) -> EnvConfig:
        """The preset's sizes with ``overrides`` on top; an unknown preset or option is a UserError."""
        check_choice("preset", preset, PRESETS)
        check_keys("env option", overrides, cls)
        return cls(**{**PRESETS[preset], "preset": preset, **overrides})


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "gpu": dict(model="small", data="synth:train=10000", batch_size=128, pretrain_steps=3000, rounds=10,
                steps_per_round=100, val_subset=250, members=8),
    "paper": dict(model="vit-p12s8", data="synth", batch_size=64, lr=5e-4, pretrain_steps=5000, rounds=10,
                  steps_per_round=200, val_subset=250, eval_batch_size=200, members=8),
    "smoke": dict(data="synth:train=200,val=50,test=50", batch_size=8, pretrain_steps=20, rounds=4, steps_per_round=4,
                  val_subset=16, eval_batch_size=50, members=2),
}
"""Named sizes: EnvConfig fields over its defaults (the ``cpu`` preset)."""

DEFAULT_COMPARE = ("prior", "trivialaugment", "none")
BACKENDS = ("inprocess", "ray")  # where a population's members train (envs.members)
BACKEND_OPTIONS = ("address", "num_cpus", "num_gpus")  # the ray backend's


@dataclass
class RunConfig:
    """A ``python -m adaptive_de.run`` run as recorded in ``runs/<name>/config.yaml`` (all values resolved)."""

    agent: str = "ppo"  # an agents.AGENTS name, or fixed:<levels>
    name: str = ""
    compare: list[str] = field(default_factory=lambda: list(DEFAULT_COMPARE))
    seed: int = 0  # the population's seed (members' streams, the agent), shared by every method of the run
    agent_kw: dict[str, Any] = field(default_factory=dict)  # agent hyper-parameter overrides
    env: dict[str, Any] = field(default_factory=dict)  # EnvConfig fields
    # Where the members train (envs.members): inprocess | ray; for ray: address, num_cpus, num_gpus per member.
    # Execution, not the experiment: on the CPU both give the same numbers, and a resumed run may change them.
    backend: str = "inprocess"
    backend_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self)
        check_choice("backend", self.backend, BACKENDS)
        unknown = set(self.backend_options) - set(BACKEND_OPTIONS)
        if unknown:
            raise UserError(f"unknown backend option(s): {', '.join(sorted(unknown))}; "
                            f"choose from: {', '.join(BACKEND_OPTIONS)}")

    def env_config(self) -> EnvConfig:
        return EnvConfig(**self.env)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        check_keys("config key", data, cls)
        config = cls(**data)
        check_keys("env option", config.env, EnvConfig)
        return config


def check_choice(kind: str, name: str, choices) -> None:
    if name not in choices:
        raise UserError(f"unknown {kind} {name!r}; choose one of: {', '.join(choices)}")


def check_keys(kind: str, data: dict[str, Any], cls: type) -> None:
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise UserError(f"unknown {kind}(s): {', '.join(sorted(unknown))}")


def check_types(config: Any) -> None:
    """Raise UserError for a dataclass field whose value has the wrong type (e.g. a string from a YAML file)."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value, hint = getattr(config, f.name), hints[f.name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        allowed = tuple(typing.get_origin(a) or a for a in allowed)  # dict[str, Any] -> dict
        if float in allowed:
            allowed += (int,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join("None" if a is type(None) else a.__name__ for a in allowed if a is not int or
                                float not in allowed)
            raise UserError(f"{f.name} must be {names}, got {value!r}")

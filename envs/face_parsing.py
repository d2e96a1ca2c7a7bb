"""``FaceParsingAugmentEnv``: an agent picks the augmentation levels and the sampling of a face-parsing trainer.

One episode is one inner training run of ``rounds`` rounds from the same start model (the cached
CE-pretrained checkpoint, or a fixed fresh initialisation); one step is one round of
``steps_per_round`` inner training steps with the action's augmentation and sampling, followed by a
score on a FIXED validation subset (the first ``val_subset`` val images).

**Inner loss.** The trainer's loss within an episode follows ``inner_loss``: ``ce`` and ``reinforce``
train every episode step with that loss at the inner learning rate. ``ce_then_reinforce`` (default)
means "MLE first, then tune on the reward": from a pretrained start the CE phase *is* the
pre-training, so every episode step is REINFORCE tuning at ``lr * tune_lr_factor`` with
``ce_weight`` x CE mixed in (the trainer's ``ce_then_reinforce`` with ``tune_from = 0``, and its
REINFORCE defaults: per-class credit on the whole mask, 1 x CE, the full learning rate, which beat
their CE control in the reward-tuning study); from scratch the episode runs the trainer's usual
``ce_then_reinforce`` schedule (CE for ``tune_from`` of the steps, then REINFORCE).

**Action** ``MultiDiscrete([5] * 16 + [4])``: a level 0..4 per op of ``adaptive_de.augment.OPS`` (in
that order; a ``LevelPolicy`` with p = 0.5), then a sampling mode, an index into ``SAMPLING_MODES``
(uniform, class_balanced, loss_prioritised, mixed = 1/3 each).

**Observation** float32 ``Box(0, 1, (21 + C,))`` with C = the label scheme's classes (LaPa: 11):

=================  ==========================================================================
index              value
=================  ==========================================================================
0                  progress: rounds done / rounds
1                  training loss of the last round, squashed: ``0.5 + 0.5 * loss / (1 + |loss|)``
                   (REINFORCE losses can be negative; 0.5 means 0, or no round yet)
2                  val-subset mean F1 (foreground classes)
3                  val-subset FP rate x 5 (pixels given a wrong face class; 0.2 saturates)
4 .. 3+C           val-subset F1 of each class, background first (NaN for an absent class -> 0)
4+C .. 19+C        last action's levels / 4 (zeros after reset)
20+C               last action's sampling mode / 3
=================  ==========================================================================

Everything is clipped to [0, 1].

**Reward** on the val subset's mean per-image ``reward`` value V: ``delta`` (default) gives
V_t - V_(t-1) (V_0 = the start model's score, so an episode's return is the improvement over the
start); ``absolute`` gives V_t; ``final`` gives 0 until the last round, then V_R. A round whose
training loss turns NaN or inf ends the episode (``terminated``) with ``nonfinite_penalty`` (-1).

**Info** (reset and step): ``round``, ``val_mean_f1``, ``val_f1`` (per class; ``None`` for a class
absent from both labels and prediction), ``val_fp_rate``,
``val_reward`` (V), ``episode_seed``; after a step also ``train_loss``, ``train_reward``, ``lr``,
``inner_step``, ``levels`` (the applied levels, ``None`` under a policy override), ``sampler``,
``policy`` (repr), ``nonfinite``. Wall-clock numbers (``images_per_s``, ``round_seconds``) are added
only with ``timing_info=True``: they differ between identical runs, and Gymnasium's determinism
check compares infos. With ``frames_in_info=True`` the terminal step's info also has ``frames``:
uint8 CHW grids ``augmented`` (train images under the last round's policy) and ``predictions``.

**Policy override.** ``reset(options={"policy": SPEC_OR_POLICY})`` trains that episode with a fixed
policy object (``"randaugment"``, ``"trivialaugment"``, ``"none"``, ``"levels:..."`` or any
``adaptive_de.augment`` policy), ignoring the action's levels (its sampling mode still applies):
so RandAugment and TrivialAugment, which no level vector expresses, run through the very same env
and budget. The override lasts one episode.

**Reproducibility.** Each reset draws an episode seed from ``np_random`` and seeds the trainer's
generators with it; ``reset(seed=s)`` followed by the same actions gives the same observations and
rewards on CPU. The env never disturbs the caller's global torch RNG (agents sample from it).
The trainer and its data are built once per env; a reset only reloads a kept copy of the start state.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding

from adaptive_de.augment import MAX_LEVEL, OPS, LevelPolicy, Policy, make_policy
from adaptive_de.data import FaceParsingSet, load
from adaptive_de.data.draw import grid, overlay, preview_grid, upscale
from adaptive_de.device import pick_device
from adaptive_de.presets import EnvConfig
from adaptive_de.rewards import get_reward
from adaptive_de.trainer import InnerTrainer, NonFiniteLossError

SAMPLING_MODES: dict[str, tuple[float, float, float]] = {
    "uniform": (1.0, 0.0, 0.0),
    "class_balanced": (0.0, 1.0, 0.0),
    "loss_prioritised": (0.0, 0.0, 1.0),
    "mixed": (1 / 3, 1 / 3, 1 / 3),
}
"""Sampling modes (the action's last entry) -> ``MixtureSampler`` coefficients (uniform, class-balanced,
loss-prioritised)."""

LEVEL_P = 0.5  # the probability with which each active op fires on a sample
FP_SCALE = 5.0
PREVIEW_IMAGES = 4


class FaceParsingAugmentEnv(gym.Env):
    """An RL env over one face-parsing training run; see the module docstring for spaces and rewards.

    Args:
        preset: env preset (``adaptive_de.presets.PRESETS``: cpu, gpu, paper, smoke) giving the sizes.
        render_mode: ``"rgb_array"`` or ``None``.
        frames_in_info: put image grids into the terminal step's info (for TensorBoard).
        timing_info: put wall-clock numbers into step infos.
        torch_threads: set torch's CPU thread count (for several envs in parallel processes).
        progress: show a progress bar while pre-training a missing start checkpoint.
        **options: any ``adaptive_de.presets.EnvConfig`` field, overriding the preset (data, reward,
            reward_kw, inner_reward, inner_reward_kw, inner_loss, rounds, steps_per_round,
            val_subset, start, reward_mode, device, seed, ...).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(self, preset: str = "cpu", *, render_mode: str | None = None, frames_in_info: bool = False,
                 timing_info: bool = False, torch_threads: int | None = None, progress: bool = False,
                 **options: Any):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.config = EnvConfig.from_preset(preset, **options)
        self.render_mode = render_mode
        self.frames_in_info = frames_in_info
        self.timing_info = timing_info
        c = self.config
        self.rounds = c.rounds
        self.reward_fn = get_reward(c.reward, **c.reward_kw)
        self.trainer = self._build_trainer(progress)
        self.scheme = self.trainer.scheme
        self.class_names: tuple[str, ...] = self.scheme.classes
        num_classes = self.scheme.num_classes
        self.observation_space = spaces.Box(0.0, 1.0, shape=(4 + num_classes + len(OPS) + 1,), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete([MAX_LEVEL + 1] * len(OPS) + [len(SAMPLING_MODES)])
        self._val_set = val_slice(self.trainer.data["val"], 0, c.val_subset)
        self._val_images, self._val_labels = self._val_set.images, self._val_set.labels.long()
        self._extra_splits: dict[str, FaceParsingSet] = {}
        # The default episode RNG comes from the config's seed, so an unseeded first reset is reproducible too.
        self._np_random, self._np_random_seed = seeding.np_random(c.seed)
        self._episode_seed = 0
        self._round = 0
        self._done = True
        self._last_action = np.zeros(len(OPS) + 1, dtype=np.int64)
        self._last_loss = 0.0
        self._value = 0.0
        self._override: Policy | None = None
        self._policy: Policy = LevelPolicy([0] * len(OPS), p=LEVEL_P, scheme=self.scheme)
        self._scores: dict[str, Any] = {}

    # ------------------------------------------------------------------ construction
    def _build_trainer(self, progress: bool) -> InnerTrainer:
        trainer = build_trainer(self.config, progress=progress)
        # What every episode starts from: model (pretrained or the seeded init), fresh optimiser, step 0.
        self._start_state = copy.deepcopy(trainer.state_dict())
        return trainer

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new inner training run from the start model; ``options={"policy": ...}`` overrides the policy."""
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"policy"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; the only option is 'policy'")
        policy = options.get("policy")
        self._override = make_policy(policy, self.scheme) if isinstance(policy, str) else policy
        self._episode_seed = int(self.np_random.integers(2**31 - 1))
        with isolated_rng(self.trainer.device):
            self.trainer.load_state_dict(self._start_state)
        self.trainer.sample_generator.manual_seed(self._episode_seed)
        self.trainer.augment_generator.manual_seed(self._episode_seed + 1)
        self._round = 0
        self._done = False
        self._last_action = np.zeros(len(OPS) + 1, dtype=np.int64)
        self._last_loss = 0.0
        self._policy = self._override or LevelPolicy([0] * len(OPS), p=LEVEL_P, scheme=self.scheme)
        self._scores = self._score_val()
        self._value = self._scores["reward"]
        return self._observation(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Train one round with the action's augmentation and sampling, then score the val subset."""
        if self._done:
            raise RuntimeError("no episode in progress: call reset()")
        action = np.asarray(action, dtype=np.int64).reshape(-1)
        if not self.action_space.contains(action):
            raise ValueError(f"action {action.tolist()} is not in {self.action_space}")
        levels, mode = action[:len(OPS)].tolist(), list(SAMPLING_MODES)[int(action[-1])]
        self._policy = self._override or LevelPolicy(levels, p=LEVEL_P, scheme=self.scheme)
        self.trainer.sampler.set_coefficients(SAMPLING_MODES[mode])
        self._last_action = action.copy()
        self._round += 1
        step_info: dict[str, Any] = {"levels": None if self._override else levels, "sampler": mode,
                                     "policy": repr(self._policy)}
        try:
            # Dropout draws from the global RNG: seed it per round, and hand the caller's state back after.
            with isolated_rng(self.trainer.device):
                torch.manual_seed(self._episode_seed + 7919 * self._round)
                stats = self.trainer.train_round(self._policy, steps=self.config.steps_per_round)
        except NonFiniteLossError as e:
            self._done = True
            info = {**self._info(), **step_info, "nonfinite": True, "error": str(e)}
            return self._observation(), float(self.config.nonfinite_penalty), True, False, info
        self._last_loss = stats["loss"]
        self._scores = self._score_val()
        value, previous = self._scores["reward"], self._value
        self._value = value
        terminated = self._round >= self.rounds
        self._done = terminated
        reward = self._reward(value, previous, terminated)
        info = {**self._info(), **step_info, "nonfinite": False, "train_loss": stats["loss"],
                "train_reward": stats["reward"], "lr": stats["lr"], "inner_step": self.trainer.step}
        if self.timing_info:
            info.update(images_per_s=stats["images_per_s"], round_seconds=stats["seconds"])
        if terminated and self.frames_in_info:
            info["frames"] = {"augmented": self.augmented_preview(), "predictions": self.prediction_grid()}
        return self._observation(), float(reward), terminated, False, info

    def _reward(self, value: float, previous: float, terminated: bool) -> float:
        mode = self.config.reward_mode
        if mode == "delta":
            return value - previous
        return value if mode == "absolute" or terminated else 0.0

    def render(self) -> np.ndarray | None:
        """``rgb_array``: uint8 [H, W, 3], rows of val image | true labels | the current model's prediction."""
        if self.render_mode != "rgb_array":
            return None
        return self.prediction_grid().permute(1, 2, 0).numpy()

    # ------------------------------------------------------------------ scores and pictures
    def _score_val(self) -> dict[str, Any]:
        """Pooled-confusion scores and the mean env reward on the fixed val subset."""
        return self.trainer.evaluate(self._val_set, reward_fn=self.reward_fn)

    def evaluate(self, split: str = "test") -> dict[str, Any]:
        """The current model's scores on a whole split (loaded on first use): mean_f1, f1, fp_rate, ..."""
        if split in self.trainer.data:
            return self.trainer.evaluate(split)
        if split not in self._extra_splits:
            self._extra_splits[split] = load(self.config.data, split, size=self.trainer.image_size)
        return self.trainer.evaluate(self._extra_splits[split])

    def prediction_grid(self, n: int = PREVIEW_IMAGES) -> torch.Tensor:
        """uint8 [3, H, W] on the CPU: one column per val image; rows: image, true labels, prediction."""
        return prediction_grid(self.trainer, self._val_images[:n], self._val_labels[:n], self.scheme)

    def augmented_preview(self, n: int = 8) -> torch.Tensor:
        """uint8 [3, H, W] on the CPU: the first ``n`` train images under the current policy, each beside its labels."""
        train = self.trainer.data["train"]
        generator = torch.Generator(self.trainer.device).manual_seed(self._episode_seed)
        images, labels = self._policy(train.images[:n], train.labels[:n], generator=generator)
        return preview_grid(images, labels, self.scheme, min_side=96, with_legend=False).cpu()

    def trainer_state(self) -> dict[str, Any]:
        """The inner trainer's full state (``torch.load(weights_only=True)``-safe), e.g. for checkpoints."""
        return self.trainer.state_dict()

    # ------------------------------------------------------------------ observation and info
    def _observation(self) -> np.ndarray:
        return observation(self._scores, self._round / self.rounds, self._last_loss, self._last_action)

    def _info(self) -> dict[str, Any]:
        return {"round": self._round, **score_info(self._scores), "episode_seed": self._episode_seed}


def build_trainer(config: EnvConfig, *, progress: bool = False, data: dict[str, FaceParsingSet] | None = None
                  ) -> InnerTrainer:
    """The inner trainer of an env config, at its start (the cached CE-pretrained model, or the seeded init),
    without touching the caller's global torch RNG. ``data`` shares another trainer's splits (a population)."""
    c = config
    train_config = c.train_config()
    with isolated_rng(pick_device(c.device)):
        trainer = InnerTrainer(train_config, data=data, splits=("train", "val"))
        if c.start == "pretrained":
            trainer.load_pretrained(c.pretrain_steps, progress=progress)
    return trainer


def prediction_grid(trainer: InnerTrainer, images: torch.Tensor, labels: torch.Tensor, scheme) -> torch.Tensor:
    """uint8 [3, H, W] on the CPU: one column per image; rows: image, true labels, the trainer's prediction."""
    pred = trainer.predict(images)
    rows = torch.cat([images, overlay(images, labels.long(), scheme), overlay(images, pred, scheme)])
    factor = max(1, math.ceil(96 / images.shape[-1]))
    return grid(upscale(rows, factor), ncol=len(images)).cpu()


def isolated_rng(device: torch.device):
    """Run a block without leaving a trace on the global torch RNG (CPU, and CUDA when used)."""
    return torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else [])


def val_slice(ds: FaceParsingSet, start: int, stop: int | None) -> FaceParsingSet:
    """Images ``start:stop`` of a split (the reward subset, or the selection subset after it)."""
    return FaceParsingSet(images=ds.images[start:stop], labels=ds.labels[start:stop], scheme=ds.scheme,
                          names=ds.names[start:stop])


def observation(scores: dict[str, Any], progress: float, last_loss: float, last_action: np.ndarray) -> np.ndarray:
    """The observation vector of the module docstring, clipped to [0, 1]."""
    f1 = np.nan_to_num(np.asarray(scores["f1"], dtype=np.float64), nan=0.0)
    levels = last_action[:len(OPS)] / MAX_LEVEL
    mode = last_action[-1:] / (len(SAMPLING_MODES) - 1)
    head = [progress, 0.5 + 0.5 * last_loss / (1 + abs(last_loss)), scores["mean_f1"], FP_SCALE * scores["fp_rate"]]
    obs = np.concatenate([np.nan_to_num(head, nan=0.0), f1, levels, mode]).astype(np.float32)
    return np.clip(obs, 0.0, 1.0)


def score_info(scores: dict[str, Any]) -> dict[str, Any]:
    """The val-subset scores as info entries; None, not NaN, for an absent class (NaN != NaN would make
    identical infos compare unequal)."""
    val_f1 = [None if math.isnan(f1) else f1 for f1 in scores["f1"]]
    return {"val_mean_f1": scores["mean_f1"], "val_f1": val_f1, "val_fp_rate": scores["fp_rate"],
            "val_reward": scores["reward"]}


def make_env(**options: Any) -> gym.Env:
    """The registered entry point: a ``FaceParsingAugmentEnv`` in a ``TimeLimit`` of its own ``rounds``."""
    env = FaceParsingAugmentEnv(**options)
    return gym.wrappers.TimeLimit(env, max_episode_steps=env.rounds)

"""SB3 callbacks of a run: the inner trainer's numbers into TensorBoard, and periodic atomic checkpoints.

TensorBoard tags written here (besides SB3's own ``rollout/``, ``time/``, ``train/``):

==============================  ===========================================================================
tag                             meaning (x axis: agent env steps)
==============================  ===========================================================================
inner/train_loss                inner training loss, mean over the rounds since the last SB3 dump
inner/train_reward              reward of the inner training batches (REINFORCE samples, or the CE batch's
                                greedy prediction), same averaging
inner/val_reward                the env reward's value V on the val subset (the delta reward's V_t)
inner/val_mean_f1               val-subset mean F1 (foreground classes)
inner/val_fp_rate               val-subset FP rate
inner/images_per_s              inner training throughput
inner_f1/<class>                val-subset F1 of each class
episode/return                  raw (un-normalised) env return of each finished episode
episode/final_val_mean_f1       val-subset mean F1 at the end of each episode
episode/final_val_reward        V at the end of each episode
episode/nonfinite               1 if the episode ended on a NaN/inf inner loss
levels/<op>                     histogram of the levels (0..4) chosen for each op over one episode
sampler/mode                    histogram of the sampling modes (0 uniform, 1 class-balanced,
                                2 loss-prioritised, 3 mixed) over one episode
images/augmented                train images under the episode's last policy, beside their labels
images/predictions              val images: image / true labels / final prediction of the episode
==============================  ===========================================================================
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
from torch.utils.tensorboard import SummaryWriter

from adaptive_de.augment import OPS
from adaptive_de.files import atomic_path
from envs.face_parsing import SAMPLING_MODES

ROUND_SCALARS = {"train_loss": "inner/train_loss", "train_reward": "inner/train_reward",
                 "val_reward": "inner/val_reward", "val_mean_f1": "inner/val_mean_f1",
                 "val_fp_rate": "inner/val_fp_rate", "images_per_s": "inner/images_per_s"}


class PurgingTensorBoardFormat(TensorBoardOutputFormat):
    """SB3's TensorBoard output, opened with a ``purge_step``: TensorBoard then hides the events at or after it
    from earlier files in the folder, so a resumed run's curves replace the tail a killed run left behind."""

    def __init__(self, folder: str | os.PathLike, purge_step: int | None = None):
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)
        self._is_closed = False


def tensorboard_logger(folder: str | os.PathLike, purge_step: int | None = None) -> Logger:
    """An SB3 logger writing only TensorBoard event files into ``folder``."""
    return Logger(str(folder), [PurgingTensorBoardFormat(folder, purge_step)])


def tensorboard_writer(logger: Logger) -> SummaryWriter | None:
    """The SummaryWriter behind an SB3 logger's TensorBoard output (for histograms and images)."""
    for output in logger.output_formats:
        if isinstance(output, TensorBoardOutputFormat):
            return output.writer
    return None


class InnerMetricsCallback(BaseCallback):
    """Logs the inner trainer's numbers from the env infos (see the module docstring for the tags).

    Args:
        class_names: the label scheme's class names (for ``inner_f1/<class>``).
        episodes_path: a JSON-lines file to append one line per finished episode to (``timesteps``,
            ``return``, ``length``, ``final_val_mean_f1``, ``final_val_reward``, ``nonfinite``), or None.
        image_every: log image grids every this many episodes (the envs need ``frames_in_info=True``).
    """

    def __init__(self, class_names: Sequence[str], *, episodes_path: str | os.PathLike | None = None,
                 image_every: int = 1):
        super().__init__()
        self.class_names = tuple(class_names)
        self.episodes_path = Path(episodes_path) if episodes_path else None
        self.image_every = image_every
        self._episodes = 0

    def _on_training_start(self) -> None:
        self.writer = tensorboard_writer(self.logger)
        self._rounds: list[list[dict[str, Any]]] = [[] for _ in range(self.training_env.num_envs)]

    def _on_step(self) -> bool:
        for env_index, info in enumerate(self.locals["infos"]):
            self._record_round(info)
            self._rounds[env_index].append(info)
            if "episode" in info:  # Monitor's marker of a finished episode
                self._end_episode(info, self._rounds[env_index])
                self._rounds[env_index] = []
        return True

    def _on_training_end(self) -> None:
        # SB3 dumps before each update: the last update's numbers would otherwise never be written.
        self.logger.dump(self.num_timesteps)

    def _record_round(self, info: dict[str, Any]) -> None:
        for key, tag in ROUND_SCALARS.items():
            if _finite(info.get(key)):
                self.logger.record_mean(tag, float(info[key]))
        for name, f1 in zip(self.class_names, info.get("val_f1", ()), strict=False):
            if _finite(f1):
                self.logger.record_mean(f"inner_f1/{name}", f1)

    def _end_episode(self, info: dict[str, Any], rounds: list[dict[str, Any]]) -> None:
        self._episodes += 1
        step = self.num_timesteps
        summary = {"timesteps": step, "return": float(info["episode"]["r"]), "length": int(info["episode"]["l"]),
                   "final_val_mean_f1": info["val_mean_f1"], "final_val_reward": info["val_reward"],
                   "nonfinite": bool(info.get("nonfinite", False))}
        if self.writer is not None:
            self.writer.add_scalar("episode/return", summary["return"], step)
            self.writer.add_scalar("episode/final_val_mean_f1", summary["final_val_mean_f1"], step)
            self.writer.add_scalar("episode/final_val_reward", summary["final_val_reward"], step)
            self.writer.add_scalar("episode/nonfinite", float(summary["nonfinite"]), step)
            chosen = np.array([r["levels"] for r in rounds if r.get("levels") is not None]).reshape(-1, len(OPS))
            if len(chosen):
                for column, op in enumerate(OPS):
                    self.writer.add_histogram(f"levels/{op}", chosen[:, column], step, bins=np.arange(-0.5, 5))
            modes = [list(SAMPLING_MODES).index(r["sampler"]) for r in rounds if "sampler" in r]
            if modes:
                self.writer.add_histogram("sampler/mode", np.array(modes), step, bins=np.arange(-0.5, 4))
            frames = info.get("frames")
            if frames and self._episodes % self.image_every == 0:
                for name, picture in frames.items():
                    self.writer.add_image(f"images/{name}", picture, step)
        if self.episodes_path is not None:
            with open(self.episodes_path, "a") as f:
                f.write(json.dumps(summary) + "\n")


class CheckpointCallback(BaseCallback):
    """Writes ``make_checkpoint()`` to ``path`` atomically every ``every`` env steps, and when training ends.

    Checkpoints are taken at the start of a rollout: the agent has just learned from everything it
    collected, so its state and ``num_timesteps`` agree (a resumed run restarts the rollout in flight).
    """

    def __init__(self, path: str | os.PathLike, every: int, make_checkpoint: Callable[[], dict[str, Any]]):
        super().__init__()
        self.path = Path(path)
        self.every = every
        self.make_checkpoint = make_checkpoint

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.num_timesteps - self._last >= self.every:
            self.save()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.save()

    def save(self) -> None:
        with atomic_path(self.path) as tmp:
            torch.save(self.make_checkpoint(), tmp)
        self._last = self.num_timesteps
        writer = tensorboard_writer(self.logger)
        if writer is not None:  # the curves up to a checkpoint survive a kill, so a resumed run leaves no gap
            writer.flush()


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

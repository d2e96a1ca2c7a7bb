"""TensorBoard plumbing of a run, and ``RoundCallback``: a population run's per-round hooks inside SB3's loop.

SB3's own scalars (``train/``, ``time/``) go through an SB3 ``Logger`` writing TensorBoard files
(``tensorboard_logger``), opened with a purge step so a resumed run's curves continue cleanly.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
from torch.utils.tensorboard import SummaryWriter


class PurgingTensorBoardFormat(TensorBoardOutputFormat):
    """SB3's TensorBoard output, opened with a ``purge_step``: TensorBoard then hides the events at or after it
    from earlier files in the folder, so a resumed run's curves replace the tail a killed run left behind."""

    def __init__(self, folder: str | os.PathLike, purge_step: int | None = None):
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)
        self._is_closed = False


def tensorboard_logger(folder: str | os.PathLike, purge_step: int | None = None) -> Logger:
    """An SB3 logger writing only TensorBoard event files into ``folder``."""
    return Logger(str(folder), [PurgingTensorBoardFormat(folder, purge_step)])


class RoundCallback(BaseCallback):
    """Drives a population run's hooks from SB3's loop: ``on_round`` after every env step (one round of every
    member), ``checkpoint()`` at the start of each rollout after the first (the agent has just updated on
    everything it collected, so agent and env are saved consistently)."""

    def __init__(self, on_round: Callable[[dict[str, Any]], None] | None,
                 checkpoint: Callable[[], None] | None):
        super().__init__()
        self.on_round_fn = on_round
        self.checkpoint = checkpoint

    def _on_training_start(self) -> None:
        self._start = self.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.checkpoint is not None and self.num_timesteps > self._start:
            self.checkpoint()

    def _on_step(self) -> bool:
        if self.on_round_fn is not None:
            infos = self.locals["infos"]
            self.on_round_fn({"round": infos[0]["round"], "rewards": self.locals["rewards"], "infos": infos})
        return True

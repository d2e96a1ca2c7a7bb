"""The one agent API: SB3-like ``predict`` / ``learn`` / ``save`` / ``load``, for learners and baselines alike."""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from adaptive_de.errors import UserError
from adaptive_de.files import atomic_path
from adaptive_de.trainer import load_checkpoint


class Agent(ABC):
    """An agent acting on ``FaceParsingAugmentEnv`` observations.

    ``predict`` takes *raw* env observations (an agent that normalises them does so itself), one or a
    batch, like SB3's. ``state_dict``/``load_state_dict`` hold tensors and plain data only, so
    ``save``/``load`` files load with ``torch.load(weights_only=True)``.

    Class attribute ``learns`` (False: ``learn`` is a no-op). ``episode_options`` are the ``reset``
    options of the agent's runs (a policy override, for baselines that no level vector expresses).
    ``search_inner_steps``: inner steps spent before the run on what the agent acts on (other runs it
    learned from), counted into its run's compute.
    """

    learns: ClassVar[bool] = False
    episode_options: dict[str, Any] | None = None
    search_inner_steps: int = 0

    def __init__(self, env: Any, *, name: str, seed: int = 0):
        self.name = name
        self.seed = seed
        self.action_space: gym.Space = env.action_space
        self.observation_space: gym.Space = env.observation_space
        self._timesteps = 0

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Raise UserError for options this agent's factory does not take (baselines take none)."""
        if options:
            raise UserError(f"agent {cls.__name__} takes no options, got {', '.join(sorted(options))}")

    @classmethod  # noqa: B027 (most agents take no argument)
    def check_spec(cls, argument: str | None, *, rounds: int, seed: int) -> None:
        """Raise UserError if the spec's argument (``fixed:...``, ``replay:...``) cannot act in a run of ``rounds``
        rounds on ``seed``: a run checks its methods with this before any training."""

    @property
    def num_timesteps(self) -> int:
        """Env steps this agent has learned from."""
        return self._timesteps

    @abstractmethod
    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        """The action for an observation (or a batch of them), and the recurrent state (always ``None``)."""

    def learn(self, total_timesteps: int, callback: BaseCallback | list[BaseCallback] | None = None, *,
              reset_num_timesteps: bool = True, progress_bar: bool = False) -> Agent:
        """Train for ``total_timesteps`` env steps (more, with ``reset_num_timesteps=False``, as in SB3)."""
        return self

    def observe(self, infos: list[dict[str, Any]]) -> None:  # noqa: B027 (a no-op for most agents)
        """See a population round's infos (a controller with per-member state reacts to exploits)."""

    def set_logger(self, logger: Logger) -> None:  # noqa: B027 (a no-op for agents that do not learn)
        """Record training numbers to this SB3 logger."""

    def state_dict(self) -> dict[str, Any]:
        return {"agent": self.name, "num_timesteps": self.num_timesteps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("agent") != self.name:
            raise UserError(f"the saved agent is {state.get('agent')!r}, not {self.name!r}")
        self._timesteps = int(state["num_timesteps"])

    def save(self, path: str | os.PathLike) -> None:
        """Write ``state_dict()`` atomically."""
        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)

    def load(self, path: str | os.PathLike) -> None:
        """Load a ``save``d file into this agent (built with the same options); a foreign file is a UserError."""
        state = load_checkpoint(path)
        try:
            self.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise UserError(f"{path} is not a saved {self.name} agent ({type(e).__name__}: {e})") from None

    def checked(self, action: np.ndarray) -> np.ndarray:
        """``action``, or a UserError naming it if the env's action space does not hold it."""
        if not self.action_space.contains(action):
            raise UserError(f"agent {self.name}: action {action.tolist()} is not in {self.action_space}")
        return action

    def _batched(self, observation: np.ndarray, act) -> np.ndarray:
        """Call ``act()`` once per observation of a batch, or once for a single observation."""
        observation = np.asarray(observation)
        if observation.ndim > len(self.observation_space.shape):
            return np.stack([act() for _ in range(len(observation))])
        return act()


class RoundAware:
    """A mixin for agents that act by the round of a population run: ``round`` is the rounds played, read from the
    population's infos and kept in the agent's state (so a resumed run goes on from the same round)."""

    round: int = 0

    def observe(self, infos: list[dict[str, Any]]) -> None:
        self.round = int(infos[0]["round"])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "round": self.round}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.round = int(state["round"])

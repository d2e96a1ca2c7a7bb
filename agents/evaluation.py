"""Run an agent for one episode on an unwrapped ``FaceParsingAugmentEnv`` (the final comparison of a run)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.base import Agent
from envs.face_parsing import FaceParsingAugmentEnv
from envs.wrappers import MenuActionWrapper


@dataclass
class Episode:
    """One episode: the infos of the reset and of every step, the rewards, and the wall time."""

    infos: list[dict[str, Any]] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def episode_return(self) -> float:
        return sum(self.rewards)

    @property
    def val_mean_f1(self) -> list[float]:
        """Val-subset mean F1 after each round, starting with the start model's."""
        return [info["val_mean_f1"] for info in self.infos]


def run_episode(agent: Agent, env: FaceParsingAugmentEnv, *, seed: int, deterministic: bool = True,
                on_step: Callable[[dict[str, Any]], None] | None = None) -> Episode:
    """Reset ``env`` with ``seed`` and the agent's ``episode_options``, then act until the episode ends.

    A menu agent (``agent.menu_actions``) acts through ``envs.MenuActionWrapper``; ``on_step`` gets each step's info.
    """
    acting_env = MenuActionWrapper(env) if agent.menu_actions else env
    episode = Episode()
    start = time.perf_counter()
    observation, info = acting_env.reset(seed=seed, options=agent.episode_options)
    episode.infos.append(info)
    done = False
    while not done:
        action, _ = agent.predict(observation, deterministic=deterministic)
        observation, reward, terminated, truncated, info = acting_env.step(action)
        episode.infos.append(info)
        episode.rewards.append(float(reward))
        done = terminated or truncated
        if on_step is not None:
            on_step(info)
    episode.wall_seconds = time.perf_counter() - start
    return episode

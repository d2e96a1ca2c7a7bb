"""Stable-Baselines3 learners (PPO, A2C, DQN) behind the ``Agent`` API, with their own observation/reward normaliser.

Defaults are sized for an expensive env (one step = one round of inner training): rollouts of one
or two episodes, small batches, a small MLP. Each agent wraps its vectorised env in ``VecNormalize``
(observations and rewards); the normaliser's statistics are part of the agent's state, and
``predict`` normalises raw observations with them.

State files hold tensors and plain data only (``torch.load(weights_only=True)``): the networks and
optimisers (``get_parameters``), the normaliser, the counters SB3 continues from, and for DQN the
replay buffer. SB3's own zip format is not used: loading it unpickles arbitrary objects.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from adaptive_de.errors import UserError
from agents.base import Agent

NET = {"net_arch": [64, 64]}
REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


class SB3Agent(Agent):
    """An SB3 algorithm on a ``VecNormalize``-wrapped env.

    Args:
        env: a VecEnv (or one gym env, wrapped in a DummyVecEnv) of ``FaceParsingAugmentEnv``.
        seed: SB3 seed (networks, action sampling, the envs' first reset).
        episode_length: agent steps per episode, which sizes the rollouts (default: the env's ``rounds``).
        device: the agent networks' device (small MLPs: CPU is fastest).
        **hyperparameters: overrides of the algorithm's arguments (``defaults`` lists ours).
    """

    learns = True
    algorithm: ClassVar[type[BaseAlgorithm]]
    agent_name: ClassVar[str]  # the name in AGENTS, results and checkpoints

    def __init__(self, env: VecEnv | gym.Env, *, seed: int = 0, episode_length: int | None = None,
                 device: str = "cpu", **hyperparameters: Any):
        if not isinstance(env, VecEnv):
            single = env
            env = DummyVecEnv([lambda: single])
        super().__init__(env, name=self.agent_name, seed=seed)
        episode_length = episode_length or int(env.get_attr("rounds", indices=[0])[0])
        self.check_options(hyperparameters)
        options = {**self.defaults(episode_length, env.num_envs), **hyperparameters}
        self.normaliser = VecNormalize(env, norm_obs=True, norm_reward=True, gamma=options.get("gamma", 0.99))
        self.model = self.algorithm("MlpPolicy", self.normaliser, seed=seed, device=device, **options)

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        """Hyper-parameters for ``episode_length`` steps per episode over ``n_envs`` envs."""
        raise NotImplementedError

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        accepted = set(inspect.signature(cls.algorithm.__init__).parameters) - {"self", "policy", "env", "seed",
                                                                               "device"}
        unknown = set(options) - accepted
        if unknown:
            raise UserError(f"unknown {cls.algorithm.__name__.lower()} option(s) {', '.join(sorted(unknown))}; "
                            f"valid: {', '.join(sorted(accepted))}")

    @property
    def num_timesteps(self) -> int:
        return self.model.num_timesteps

    def set_logger(self, logger: Logger) -> None:
        self.model.set_logger(logger)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        observation = self.normaliser.normalize_obs(np.asarray(observation, dtype=np.float32))
        return self.model.predict(observation, state, episode_start, deterministic)

    def learn(self, total_timesteps: int, callback: BaseCallback | list[BaseCallback] | None = None, *,
              reset_num_timesteps: bool = True, progress_bar: bool = False) -> SB3Agent:
        # log_interval=1: every rollout (on-policy) or episode (off-policy) is one point on the curves
        self.model.learn(total_timesteps, callback=callback, log_interval=1, reset_num_timesteps=reset_num_timesteps,
                         progress_bar=progress_bar)
        return self

    def state_dict(self) -> dict[str, Any]:
        m = self.model
        return {"agent": self.name, "num_timesteps": m.num_timesteps, "n_updates": m._n_updates,
                "episode_num": m._episode_num, "params": m.get_parameters(),
                "normaliser": {"obs": _rms_state(self.normaliser.obs_rms), "ret": _rms_state(self.normaliser.ret_rms)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        m = self.model
        m.set_parameters(state["params"], exact_match=True, device=m.device)
        m.num_timesteps, m._n_updates, m._episode_num = (int(state[k]) for k in ("num_timesteps", "n_updates",
                                                                                  "episode_num"))
        _load_rms(self.normaliser.obs_rms, state["normaliser"]["obs"])
        _load_rms(self.normaliser.ret_rms, state["normaliser"]["ret"])


def _rms_state(rms: RunningMeanStd) -> dict[str, Any]:
    return {"mean": torch.from_numpy(np.array(rms.mean)), "var": torch.from_numpy(np.array(rms.var)),
            "count": float(rms.count)}


def _load_rms(rms: RunningMeanStd, state: dict[str, Any]) -> None:
    mean, var = state["mean"].numpy(), state["var"].numpy()
    if mean.shape != np.shape(rms.mean):
        raise ValueError(f"normaliser shape {mean.shape} does not match the env's {np.shape(rms.mean)}")
    rms.mean, rms.var, rms.count = mean.copy(), var.copy(), float(state["count"])


class PPOAgent(SB3Agent):
    """PPO: rollouts of two episodes, minibatches of half a rollout, 10 epochs."""

    algorithm = PPO
    agent_name = "ppo"

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        n_steps = max(1, math.ceil(2 * episode_length / n_envs))
        return {"n_steps": n_steps, "batch_size": max(2, n_steps * n_envs // 2), "n_epochs": 10,
                "learning_rate": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "ent_coef": 0.01, "policy_kwargs": NET}


class PPOMenuAgent(PPOAgent):
    """PPO over the ``envs.MenuActionWrapper`` menu: one choice among 14 named policies per round, instead of
    16 levels and a sampling mode (a coarser action that a few episodes of experience can rank)."""

    agent_name = "ppo_menu"
    menu_actions = True


class A2CAgent(SB3Agent):
    """A2C: one update per episode's worth of steps."""

    algorithm = A2C
    agent_name = "a2c"

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        return {"n_steps": max(1, math.ceil(episode_length / n_envs)), "learning_rate": 7e-4, "gamma": 0.99,
                "ent_coef": 0.01, "policy_kwargs": NET}


class DQNAgent(SB3Agent):
    """DQN over the ``envs.MenuActionWrapper`` menu: learning starts after two episodes, target update every four."""

    algorithm = DQN
    agent_name = "dqn"
    menu_actions = True

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        return {"buffer_size": 10_000, "learning_starts": 2 * episode_length, "batch_size": 32, "train_freq": 1,
                "gradient_steps": 1, "target_update_interval": 4 * episode_length, "exploration_fraction": 0.5,
                "exploration_final_eps": 0.05, "learning_rate": 1e-3, "gamma": 0.99, "policy_kwargs": NET}

    def state_dict(self) -> dict[str, Any]:
        buffer = self.model.replay_buffer
        replay = {name: torch.from_numpy(getattr(buffer, name)) for name in REPLAY_ARRAYS}
        return {**super().state_dict(), "n_calls": self.model._n_calls,
                "replay": {**replay, "pos": buffer.pos, "full": buffer.full}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model._n_calls = int(state["n_calls"])
        buffer, replay = self.model.replay_buffer, state["replay"]
        # A different --n-envs changes the buffer's shape: the agent then refills it from scratch.
        if all(tuple(replay[name].shape) == getattr(buffer, name).shape for name in REPLAY_ARRAYS):
            for name in REPLAY_ARRAYS:
                getattr(buffer, name)[...] = replay[name].numpy()
            buffer.pos, buffer.full = int(replay["pos"]), bool(replay["full"])

"""Stable-Baselines3 learners (PPO, A2C, DQN) behind the ``Agent`` API, sized for a population run.

A population run (``envs.PopulationEnv``) gives ``members`` samples per round and ``rounds`` rounds:
a few dozen expensive samples whose rewards are already centred within each round (group-relative),
so the learners see raw observations and rewards (no running normaliser: fitted on a few dozen
near-constant samples it would divide by ~1e-3 and feed evaluation noise to the network).

PPO and A2C act with a *linear* policy whose logits start at a prior of ``agents.population``
(weights zero, biases the prior's log-probabilities), so the first round samples the prior exactly
and each update moves the policy from there; ``gamma = 0``: a round's reward belongs to that round's
action (the population's group-relative reward is already a per-round advantage). ``ppo`` chooses one
magnitude (``STRENGTH_MENU`` through ``envs.VecMenuWrapper``, prior ``strength_prior_logits``; ``ppo_flat``
the same from ``flat_strength_logits``; ``ppo_return`` the same credited with the rest of its rollout's rewards;
``ppo_grid`` the latter over ``GRID_MENU``, ``best_fixed``'s candidates, from a flat prior; ``ppo_families`` one
offset per op family, from every family at +2, ``family_prior_logits``; ``ppo_fitted`` the one magnitude around
``fitted``'s recipe, from that recipe); ``ppo_levels`` and
``a2c`` choose every op's level and the sampling mode (prior ``prior_logits``). DQN chooses from the menu of
``envs.MENU``.

State files hold tensors and plain data only (``torch.load(weights_only=True)``): the networks and
optimisers (``get_parameters``), the counters SB3 continues from, and for DQN the replay buffer.
SB3's own zip format is not used: loading it unpickles arbitrary objects.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from adaptive_de.errors import UserError
from agents.base import Agent
from agents.fitted import FittedAgent, fitted_menu, fitted_prior_logits, fitted_search
from agents.population import (
    FAMILIES,
    GRID_MENU,
    STRENGTH_MENU,
    STRENGTHS,
    family_action,
    family_prior_logits,
    flat_grid_logits,
    flat_strength_logits,
    prior_logits,
    strength_prior_logits,
)
from envs.wrappers import MENU, VecMenuWrapper, VecProductWrapper

LINEAR = {"net_arch": [], "ortho_init": False}  # logits = W obs + b: W = 0 and b = the prior at the start
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
    prior = staticmethod(prior_logits)  # the actor's start: log-probabilities per action dimension
    # a Discrete menu over the env's levels and mode (None: the algorithm acts on them directly)
    menu: ClassVar[Mapping[str, tuple[Mapping[str, int], str]] | None] = None
    # False: the actor's logits are its biases alone (weights held at zero), a policy over the menu shared by every
    # member and round, whatever they observe (the critic still reads the observation)
    reads_observation: ClassVar[bool] = True

    def __init__(self, env: VecEnv | gym.Env, *, seed: int = 0, episode_length: int | None = None,
                 device: str = "cpu", **hyperparameters: Any):
        if not isinstance(env, VecEnv):
            single = env
            env = DummyVecEnv([lambda: single])
        super().__init__(env, name=self.agent_name, seed=seed)
        episode_length = episode_length or int(env.get_attr("rounds", indices=[0])[0])
        self.check_options(hyperparameters)
        options = {**self.defaults(episode_length, env.num_envs), **hyperparameters}
        # SB3's A2C writes its RMSprop into the policy_kwargs it is given: a shared dict (``LINEAR``, or the caller's)
        # would hand RMSprop to every PPO built later in the same process.
        if "policy_kwargs" in options:
            options["policy_kwargs"] = dict(options["policy_kwargs"])
        # A population run is one episode that ``learn`` plays exactly once: a rollout that does not divide it
        # would play on into a second run and end without a final model.
        if episode_length % options.get("n_steps", 1):
            raise UserError(f"n_steps {options['n_steps']} does not divide the run's {episode_length} rounds")
        self.env = self.wrap(env)
        self.model = self.algorithm("MlpPolicy", self.env, seed=seed, device=device, **options)
        self.init_policy()

    def wrap(self, env: VecEnv) -> VecEnv:
        """The env the algorithm acts on: the env itself, or its ``menu``."""
        return env if self.menu is None else VecMenuWrapper(env, self.menu)

    def init_policy(self) -> None:
        """Start the actor at the prior: zero weights, the prior's log-probabilities as biases; weights that stay
        zero (no gradient, so the optimiser skips them) where the policy does not read the observation."""
        if self.prior is None:
            return
        action_net = self.model.policy.action_net
        with torch.no_grad():
            action_net.weight.zero_()
            action_net.bias.copy_(torch.as_tensor(np.concatenate(self.prior()), dtype=action_net.bias.dtype))
        action_net.weight.requires_grad_(self.reads_observation)

    def kl_from_prior(self, observations: np.ndarray) -> tuple[float, float] | None:
        """Mean over ``observations`` of KL(policy || prior) and of the policy's entropy (nats, all dimensions);
        None for an agent without a prior."""
        if self.prior is None:
            return None
        obs = torch.as_tensor(np.asarray(observations, dtype=np.float32), device=self.model.device)
        prior = [torch.as_tensor(p, dtype=torch.float32) for p in self.prior()]
        with torch.no_grad():
            dists = self.model.policy.get_distribution(obs).distribution
            dists = dists if isinstance(dists, list) else [dists]  # a Discrete action has one distribution
            kl = sum(torch.distributions.kl_divergence(d, torch.distributions.Categorical(logits=p.expand_as(d.logits)))
                     for d, p in zip(dists, prior, strict=True))
            entropy = sum(d.entropy() for d in dists)
        return float(kl.mean()), float(entropy.mean())

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
        return self.model.predict(np.asarray(observation, dtype=np.float32), state, episode_start, deterministic)

    def learn(self, total_timesteps: int, callback: BaseCallback | list[BaseCallback] | None = None, *,
              reset_num_timesteps: bool = True, progress_bar: bool = False) -> SB3Agent:
        # log_interval=1: every rollout (on-policy) or episode (off-policy) is one point on the curves
        self.model.learn(total_timesteps, callback=callback, log_interval=1, reset_num_timesteps=reset_num_timesteps,
                         progress_bar=progress_bar)
        return self

    def state_dict(self) -> dict[str, Any]:
        m = self.model
        return {"agent": self.name, "num_timesteps": m.num_timesteps, "n_updates": m._n_updates,
                "episode_num": m._episode_num, "params": m.get_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        m = self.model
        m.set_parameters(state["params"], exact_match=True, device=m.device)
        m.num_timesteps, m._n_updates, m._episode_num = (int(state[k]) for k in ("num_timesteps", "n_updates",
                                                                                  "episode_num"))


def rollout_rounds(rounds: int, updates: int = 3) -> int:
    """Rounds per rollout for about ``updates`` updates a run: the largest divisor of ``rounds`` that is at most
    ``rounds // updates`` (at least 1), so the rollouts end with the run (16 rounds: 4, not 5)."""
    most = max(1, rounds // updates)
    return max(d for d in range(1, most + 1) if rounds % d == 0)


class PPOAgent(SB3Agent):
    """PPO over one magnitude for every op (``agents.population.STRENGTH_MENU``: an offset of the prior's levels),
    from its prior at offset 0: about three updates a run (``rollout_rounds``, all members, one minibatch), 10 epochs
    at a learning rate that lets the logits move within one run."""

    algorithm = PPO
    agent_name = "ppo"
    prior = staticmethod(strength_prior_logits)
    menu = STRENGTH_MENU

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        # An entropy bonus keeps the one choice from locking onto whatever the first small batch favoured: on a
        # bandit whose reward grows with the strength, without it 3 of 12 seeds end on a weaker recipe than the
        # prior's after one run's 32 samples; with it none does, and under pure noise the policy widens instead.
        n_steps = rollout_rounds(episode_length)
        return {"n_steps": n_steps, "batch_size": n_steps * n_envs, "n_epochs": 10, "learning_rate": 0.03,
                "gamma": 0.0, "gae_lambda": 1.0, "clip_range": 0.5, "ent_coef": 0.3, "normalize_advantage": False,
                "policy_kwargs": LINEAR}


class PPOFlatAgent(PPOAgent):
    """``ppo`` from a flat prior over the strengths: the same menu and updates, only the start differs. A run's first
    rounds then compare every offset instead of mostly the centre, so the policy can reach an end of the menu (every
    op off but the flip, or every op at +2) within one run: on a simulated bandit at the measured noise it gets about
    three times as far towards the best end as ``ppo`` by rounds 5-8 (``benchmarks.strength_bandit``). On the main
    task, where the best constant is +1, it did not beat ``ppo``; without shift, where -2 is best, it led ``ppo`` on
    every seed but three seeds could not resolve the gap (docs/LEARNING.md, "A flat prior")."""

    agent_name = "ppo_flat"
    prior = staticmethod(flat_strength_logits)


class PPOReturnAgent(PPOAgent):
    """``ppo`` crediting each action with the reward to the end of its rollout (``gamma = 1``) instead of its own
    round's: the same prior, menu and updates, only the credit differs. A member's per-round gains are mostly
    measurement noise that cancels over consecutive rounds: with its action fixed, one member's gain varies by 1.04
    points a round but its final level by 0.54, while the oracle recipe's lead over the prior's adds up to +6.51
    points over a run (``benchmarks.reward_signal``, docs/reward_signal.json). Summed over a rollout (about a third
    of the run), an early action's lasting effect counts several times and the noise between its ends only once."""

    agent_name = "ppo_return"

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        return {**PPOAgent.defaults(episode_length, n_envs), "gamma": 1.0}


class PPOGridAgent(PPOReturnAgent):
    """``ppo_return`` choosing from ``best_fixed``'s candidates (``agents.population.GRID_MENU``: the four a 4-member
    grid population trains) from a flat prior: the same updates and credit, another menu. ``best_fixed`` keeps one
    candidate per member and lets exploits copy the best; this learns which candidate to give every member, so the
    two compare learning with selection over the same recipes (``prior_grid``, the frozen flat prior, is its
    control). On the main task (seeds 42-46) it trailed ``best_fixed`` by 0.51 points (95% CI -1.74 to +0.71): it
    moved towards ``geo+photo`` more slowly than the grid's exploits did (docs/LEARNING.md, "Learning over the
    grid's own candidates")."""

    agent_name = "ppo_grid"
    prior = staticmethod(flat_grid_logits)
    menu = GRID_MENU


class PPOLevelsAgent(PPOAgent):
    """PPO over every op's level and the sampling mode (17 action dimensions), from the per-op prior
    (``prior_logits``); the same updates as ``ppo`` without the entropy bonus. The wide clip range (0.5) matters
    here: the ratio is a product over 17 dimensions, so a narrow clip would freeze each one."""

    agent_name = "ppo_levels"
    prior = staticmethod(prior_logits)
    menu = None

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        return {**PPOAgent.defaults(episode_length, n_envs), "ent_coef": 0.0}


class PPOFamiliesAgent(PPOAgent):
    """PPO over one strength offset per op family (``agents.population.FAMILIES``, four action dimensions of
    ``STRENGTHS``), from every family at +2 (``family_prior_logits``): ``ppo``'s updates without its entropy bonus,
    which from a prior at the menu's end would pull every family down whatever the rewards say."""

    agent_name = "ppo_families"
    prior = staticmethod(family_prior_logits)
    menu = None  # no Discrete menu: a product of four (``wrap``)

    defaults = staticmethod(PPOLevelsAgent.defaults)  # the same updates: ppo's without the entropy bonus

    def wrap(self, env: VecEnv) -> VecEnv:
        return VecProductWrapper(env, [len(STRENGTHS)] * len(FAMILIES), family_action)


class PPOFittedAgent(PPOAgent):
    """``ppo_fitted:FILE``: ``ppo`` started from ``fitted``'s recipe, experience carried across runs. Its menu is
    ``ppo``'s one magnitude with the fit's edits kept in every item (``agents.fitted.fitted_menu``), its prior
    peaked at the fitted recipe (offset +2, the menu's end), with ``ppo_families``' updates: without the entropy
    bonus, which from a prior at the menu's end would pull it down whatever the rewards say. The probe runs' steps
    count, as for ``fitted``; ``prior_fitted:FILE`` is its frozen prior."""

    agent_name = "ppo_fitted"
    prior = staticmethod(fitted_prior_logits)
    defaults = staticmethod(PPOLevelsAgent.defaults)

    def __init__(self, env: VecEnv | gym.Env, *, source: str, seed: int = 0, **hyperparameters: Any):
        levels, search = fitted_search(source, seed=seed)
        self.menu = fitted_menu(levels)  # read by ``wrap`` in the base class's __init__
        super().__init__(env, seed=seed, **hyperparameters)
        self.name, self.search_inner_steps = f"{self.agent_name}:{source}", search

    check_spec = FittedAgent.check_spec


class PPOFittedOftenAgent(PPOFittedAgent):
    """``ppo_fitted_often:FILE``: ``ppo_fitted`` updated every two rounds (12 updates in a 24-round run, not 3), the
    same prior, menu, learning rate and epochs. In ``learner_scratch24`` ``ppo_fitted`` hardly left its prior although
    its members' rewards favoured offset +1 over the recipe's +2 by 0.44 points a round (docs/LEARNING.md); on a
    bandit with those rewards, updating every two rounds moved the policy about twice as far toward +1 by the run's
    end, and no further from +2 where +2 was best. On the task (``learner_often24``) every run instead collapsed
    onto one offset for all members, likely through the observation's last-levels features, which the bandit lacks."""

    agent_name = "ppo_fitted_often"

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        n_steps = rollout_rounds(episode_length, updates=max(1, episode_length // 2))
        return {**PPOLevelsAgent.defaults(episode_length, n_envs), "n_steps": n_steps, "batch_size": n_steps * n_envs}


class PPOFittedBanditAgent(PPOFittedOftenAgent):
    """``ppo_fitted_bandit:FILE``: ``ppo_fitted_often`` whose policy does not read the observation (its logits are its
    biases: one distribution over the menu for every member and round), the same prior, menu and updates. In
    ``learner_often24`` every run of ``ppo_fitted_often`` locked all members onto one offset, onto the recipe in three
    runs of four, although the rewards favoured the offset below it. On a bandit whose observation carries each
    member's last levels, as the task's does, ``ppo_fitted_often`` does the same (all members on one offset in most
    late rounds, even with no effect to find) and this one does not (``benchmarks.context_bandit``). On the task
    (``learner_bandit24``) it did not lock either and moved down as the round rewards said, yet trailed its frozen
    prior by 0.34 points (95% CI -1.14 to +0.45)."""

    agent_name = "ppo_fitted_bandit"
    reads_observation = False


class A2CAgent(SB3Agent):
    """A2C from the prior: one update per round (all members' samples)."""

    algorithm = A2C
    agent_name = "a2c"

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        return {"n_steps": 1, "learning_rate": 0.03, "gamma": 0.0, "ent_coef": 0.0, "policy_kwargs": LINEAR}


class DQNAgent(SB3Agent):
    """DQN over the ``envs.MenuActionWrapper`` menu: learning starts after two episodes, target update every four."""

    algorithm = DQN
    agent_name = "dqn"
    menu = MENU
    prior = None  # a Q-network has no policy to start at a prior

    @staticmethod
    def defaults(episode_length: int, n_envs: int) -> dict[str, Any]:
        return {"buffer_size": 10_000, "learning_starts": n_envs, "batch_size": 32, "train_freq": 1,
                "gradient_steps": 1, "target_update_interval": episode_length, "exploration_fraction": 0.5,
                "exploration_final_eps": 0.05, "learning_rate": 1e-3, "gamma": 0.0, "policy_kwargs": {"net_arch": [64]}}

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

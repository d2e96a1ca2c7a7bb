"""Non-learning baselines acting through the same env (so they spend the same inner-training budget)."""
from __future__ import annotations

from typing import Any

import numpy as np

from adaptive_de.augment import MAX_LEVEL, OPS
from adaptive_de.errors import UserError
from agents.base import Agent, RoundAware
from agents.population import SeededAgent
from envs.face_parsing import SAMPLING_MODES


class ConstantAgent(Agent):
    """The same action every round."""

    def __init__(self, env: Any, *, name: str, action: np.ndarray, seed: int = 0):
        super().__init__(env, name=name, seed=seed)
        self._action = self.checked(action)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self._batched(observation, self._action.copy), None


class NoneAgent(ConstantAgent):
    """No augmentation, uniform sampling (the all-zeros action)."""

    def __init__(self, env: Any, *, seed: int = 0):
        super().__init__(env, name="none", action=np.zeros(env.action_space.shape, dtype=np.int64), seed=seed)


class FixedAgent(ConstantAgent):
    """``fixed:L1,...,L16[,MODE]``: constant levels (``OPS`` order, 0..4) and a sampling mode (default uniform)."""

    def __init__(self, env: Any, *, levels: str, seed: int = 0):
        super().__init__(env, name=f"fixed:{levels}", action=parse_fixed(levels), seed=seed)

    @classmethod
    def check_spec(cls, argument: str | None, *, rounds: int, seed: int) -> None:
        parse_fixed(argument or "")


class SwitchAgent(RoundAware, ConstantAgent):
    """``switch:R/A/B``: ``fixed:A`` in rounds 1..R of a population run, then ``fixed:B`` (each in ``fixed:``'s
    form): a two-phase schedule, such as the recipe that suits a drifting stream (``synth``'s ``wide_until``) on
    each side of its switch. It reads the round from the population's infos."""

    def __init__(self, env: Any, *, schedule: str, seed: int = 0):
        switch, before, after = parse_switch(schedule)
        super().__init__(env, name=f"switch:{schedule}", action=before, seed=seed)
        self.switch, self.after = switch, self.checked(after)

    @classmethod
    def check_spec(cls, argument: str | None, *, rounds: int, seed: int) -> None:
        switch = parse_switch(argument or "")[0]
        if switch >= rounds:
            raise UserError(f"switch:{argument} switches after round {switch}, but the run has only {rounds} rounds")

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        action = self._action if self.round < self.switch else self.after
        return self._batched(observation, action.copy), None


def parse_switch(spec: str) -> tuple[int, np.ndarray, np.ndarray]:
    """``"R/A/B"`` -> (R, A's action, B's action); a malformed spec is a UserError."""
    parts = spec.split("/")
    form = f"switch:R/A/B with R >= 1 rounds and A, B in fixed:'s form (L1,...,L{len(OPS)}[,MODE])"
    if len(parts) != 3 or not parts[0].strip().isdigit() or int(parts[0]) < 1:
        raise UserError(f"bad switch agent {spec!r}; use {form}")
    return int(parts[0]), parse_fixed(parts[1]), parse_fixed(parts[2])


class MixAgent(SeededAgent):
    """``mix:A/B``: every member draws ``fixed:A`` or ``fixed:B`` (each in ``fixed:``'s form) with probability 1/2
    every round, from the agent's own generator. A random design over two recipes: the members are assigned
    independently of their models, so the gap between the two groups' rewards in one round is what the round reward
    says of the recipes, the signal a learner choosing between them would follow."""

    def __init__(self, env: Any, *, recipes: str, seed: int = 0):
        super().__init__(env, name=f"mix:{recipes}", seed=seed)
        self.recipes = [self.checked(action) for action in parse_mix(recipes)]

    @classmethod
    def check_spec(cls, argument: str | None, *, rounds: int, seed: int) -> None:
        parse_mix(argument or "")

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self._batched(observation, lambda: self.recipes[self.rng.integers(2)].copy()), None


def parse_mix(spec: str) -> tuple[np.ndarray, np.ndarray]:
    """``"A/B"`` -> (A's action, B's action); a malformed spec is a UserError."""
    parts = spec.split("/")
    if len(parts) != 2:
        raise UserError(f"bad mix agent {spec!r}; use mix:A/B with A, B in fixed:'s form (L1,...,L{len(OPS)}[,MODE])")
    return parse_fixed(parts[0]), parse_fixed(parts[1])


def parse_fixed(spec: str) -> np.ndarray:
    """``"2,2,...,2[,class_balanced]"`` -> the MultiDiscrete action; a malformed spec is a UserError."""
    parts = [p.strip() for p in spec.split(",")]
    mode = parts.pop() if len(parts) == len(OPS) + 1 else "uniform"
    form = (f"fixed:L1,...,L{len(OPS)}[,MODE] with levels 0..{MAX_LEVEL} in op order ({', '.join(OPS)}) "
            f"and MODE one of {', '.join(SAMPLING_MODES)}")
    if len(parts) != len(OPS) or mode not in SAMPLING_MODES:
        raise UserError(f"bad fixed agent {spec!r}; use {form}")
    try:
        levels = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"bad fixed agent {spec!r}; use {form}") from None
    if not all(0 <= level <= MAX_LEVEL for level in levels):
        raise UserError(f"bad fixed agent {spec!r}; use {form}")
    return np.array([*levels, list(SAMPLING_MODES).index(mode)], dtype=np.int64)


class RandomAgent(SeededAgent):
    """A uniformly random action every round (levels and sampling mode), from the agent's own generator."""

    def __init__(self, env: Any, *, seed: int = 0):
        super().__init__(env, name="random", seed=seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self._batched(observation, lambda: self.rng.integers(self.action_space.nvec)), None


class PolicyOverrideAgent(NoneAgent):
    """Trains its episodes with a fixed augmentation policy object through the env's policy override."""

    policy_spec: str

    def __init__(self, env: Any, *, seed: int = 0):
        super().__init__(env, seed=seed)
        self.name = self.policy_spec
        self.episode_options = {"policy": self.policy_spec}


class RandAugmentAgent(PolicyOverrideAgent):
    """RandAugment (n = 2 ops per image at m = 9 of 10), uniform sampling."""

    policy_spec = "randaugment"


class TrivialAugmentAgent(PolicyOverrideAgent):
    """TrivialAugment (one op per image at a uniformly random strength), uniform sampling."""

    policy_spec = "trivialaugment"

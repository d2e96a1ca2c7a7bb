"""A ``Discrete`` action space over a menu of named augmentation policies (for DQN): ``MenuActionWrapper`` for one
env, ``VecMenuWrapper`` for a vectorised one (a population); ``VecProductWrapper``: a ``MultiDiscrete`` action over
a product of small menus (one choice per dimension)."""
from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from adaptive_de.augment import OPS
from envs.face_parsing import SAMPLING_MODES

GEOMETRIC = ("rotate", "scale", "translate_x", "translate_y", "shear")
PHOTOMETRIC = ("brightness", "contrast", "gamma", "saturation", "hue")
DEGRADATION = ("sharpness", "blur", "noise", "grayscale")


def _levels(level: int, *groups: tuple[str, ...]) -> dict[str, int]:
    return {op: level for group in groups for op in group}


GEO_PHOTO_FLIP = {**_levels(2, GEOMETRIC, PHOTOMETRIC), "hflip": 4}

MENU: dict[str, tuple[Mapping[str, int], str]] = {
    "off": ({}, "uniform"),
    "flip": ({"hflip": 4}, "uniform"),
    "geometric": (_levels(2, GEOMETRIC), "uniform"),
    "geometric+flip": ({**_levels(2, GEOMETRIC), "hflip": 4}, "uniform"),
    "photometric": (_levels(2, PHOTOMETRIC), "uniform"),
    "degradation": (_levels(2, DEGRADATION), "uniform"),
    "erase": ({"erase": 2}, "uniform"),
    "geo+photo+flip": (GEO_PHOTO_FLIP, "uniform"),
    "all@1": (_levels(1, OPS), "uniform"),
    "all@2": (_levels(2, OPS), "uniform"),
    "all@3": (_levels(3, OPS), "uniform"),
    "geo+photo+flip, class-balanced": (GEO_PHOTO_FLIP, "class_balanced"),
    "geo+photo+flip, loss-prioritised": (GEO_PHOTO_FLIP, "loss_prioritised"),
    "geo+photo+flip, mixed sampling": (GEO_PHOTO_FLIP, "mixed"),
}
"""The menu, in action order: name -> ({op: level} (missing ops off), sampling mode). Levels 2 of 4 are
the usual face-parsing ranges (rotation up to 20 deg, shifts up to 10 %, colour factors 1 +- 0.3);
``hflip`` at 4 mirrors half the samples (with the left/right label swap)."""


class MenuActionWrapper(gym.ActionWrapper):
    """Expose ``Discrete(len(menu))`` over a ``FaceParsingAugmentEnv``'s ``MultiDiscrete`` action.

    Action i picks the i-th entry of ``menu`` (default ``MENU``). ``names`` lists the entries in order.
    """

    def __init__(self, env: gym.Env, menu: Mapping[str, tuple[Mapping[str, int], str]] = MENU):
        super().__init__(env)
        self.names = tuple(menu)
        self._actions = menu_actions(menu)
        self.action_space = spaces.Discrete(len(self._actions))

    def action(self, action: int | np.integer | np.ndarray) -> np.ndarray:
        return self._actions[int(action)].copy()


class VecMenuWrapper(VecEnvWrapper):
    """``MenuActionWrapper`` for a VecEnv: each sub-env's ``Discrete`` menu choice becomes its levels and mode."""

    def __init__(self, venv: VecEnv, menu: Mapping[str, tuple[Mapping[str, int], str]] = MENU):
        super().__init__(venv, action_space=spaces.Discrete(len(menu)))
        self.names = tuple(menu)
        self._actions = np.stack(menu_actions(menu))

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(self._actions[np.asarray(actions, dtype=np.int64).reshape(-1)])

    def step_wait(self):
        return self.venv.step_wait()

    def reset(self) -> np.ndarray:
        return self.venv.reset()


class VecProductWrapper(VecEnvWrapper):
    """A ``MultiDiscrete(nvec)`` action for a VecEnv: each sub-env picks one choice per dimension, and
    ``action_of(choices)`` gives the wrapped env's action for that tuple (tabulated once, so a step only indexes)."""

    def __init__(self, venv: VecEnv, nvec: Sequence[int], action_of: Callable[[tuple[int, ...]], np.ndarray]):
        super().__init__(venv, action_space=spaces.MultiDiscrete(list(nvec)))
        self._table = np.stack([action_of(choices) for choices in itertools.product(*map(range, nvec))])

    def step_async(self, actions: np.ndarray) -> None:
        choices = np.asarray(actions, dtype=np.int64).reshape(self.num_envs, -1)
        self.venv.step_async(self._table[np.ravel_multi_index(tuple(choices.T), tuple(self.action_space.nvec))])

    def step_wait(self):
        return self.venv.step_wait()

    def reset(self) -> np.ndarray:
        return self.venv.reset()


def recipe_action(levels: Mapping[str, int], mode: str) -> np.ndarray:
    """The ``MultiDiscrete`` action of a recipe: op -> level (an op not named is off) and a sampling mode."""
    return np.array([levels.get(op, 0) for op in OPS] + [list(SAMPLING_MODES).index(mode)], dtype=np.int64)


def menu_actions(menu: Mapping[str, tuple[Mapping[str, int], str]]) -> list[np.ndarray]:
    """The ``MultiDiscrete`` action of each menu entry, in menu order."""
    return [recipe_action(levels, mode) for levels, mode in menu.values()]

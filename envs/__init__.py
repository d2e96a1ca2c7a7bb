"""Gymnasium environments; importing this package registers ``AdaptiveDE/FaceParsing-v0``.

``gymnasium.make("AdaptiveDE/FaceParsing-v0", preset="smoke", ...)`` builds a
``FaceParsingAugmentEnv`` inside a ``TimeLimit`` of its own ``rounds`` (options decide the length,
so the registration carries no fixed ``max_episode_steps``).
"""
import gymnasium

from envs.face_parsing import SAMPLING_MODES, FaceParsingAugmentEnv, make_env
from envs.population import PopulationEnv
from envs.wrappers import MENU, MenuActionWrapper, VecMenuWrapper

ENV_ID = "AdaptiveDE/FaceParsing-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="envs.face_parsing:make_env")

__all__ = ["ENV_ID", "MENU", "SAMPLING_MODES", "FaceParsingAugmentEnv", "MenuActionWrapper", "PopulationEnv",
           "VecMenuWrapper", "make_env"]

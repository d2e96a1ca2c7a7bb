"""Agents: SB3 learners and non-learning baselines behind one API (``agents.base.Agent``).

``AGENTS`` maps names to factories ``factory(env, *, seed=0, **options) -> Agent``;
``make_agent("fixed:2,2,...", env)`` also parses an argument after the colon.

=======================  =====================================================================
name                     agent
=======================  =====================================================================
ppo                      PPO over one magnitude for every op (an offset from the prior's levels), from its prior
prior                    that prior, frozen (ppo's control: exploit only)
ppo_flat                 ppo from a flat prior over the strengths
prior_flat               that flat prior, frozen (ppo_flat's control)
ppo_return               ppo crediting each action with its rollout's rewards to the end (gamma = 1; control: prior)
ppo_grid                 ppo_return choosing from best_fixed's four candidates, from a flat prior
prior_grid               that flat prior, frozen (ppo_grid's control)
replay:FILE              ppo's per-round strength frequencies from a finished study, replayed without learning
ppo_families             PPO over one strength offset per op family (geometric, photometric, degradation,
                         occlusion), from +2
prior_families           that prior, frozen (ppo_families's control)
ppo_levels, a2c          PPO and A2C over every op's level and the sampling mode, from the per-op prior
prior_levels             that per-op prior, frozen (ppo_levels's control)
probe                    every op's level uniform for every member every round (the random design fitted learns from)
fitted:FILE              strength+2 edited by each op's effect, fitted to FILE's probe runs on other seeds
ppo_fitted:FILE          ppo's one magnitude with fitted's edits kept, from fitted's recipe (learning on top of it)
ppo_fitted_often:FILE    ppo_fitted updated every two rounds (12 updates in 24 rounds, not 3)
ppo_fitted_bandit:FILE   ppo_fitted_often whose policy ignores the observation (one distribution for every member)
prior_fitted:FILE        that prior, frozen (the control of ppo_fitted, ppo_fitted_often and ppo_fitted_bandit)
dqn                      DQN over the menu of ``envs.MENU``
pbt                      PBT over the levels, no learning (PBA's exploit and explore)
best_fixed               a grid of constant candidates, one per member, with exploit
strength_grid            the same over ppo's strength offsets, spread evenly over the menu (selection, no learning)
random                   a uniformly random action every round
none                     no augmentation, uniform sampling
randaugment              RandAugment(n=2, m=9) through the env's policy override
trivialaugment           TrivialAugment through the env's policy override
fixed:L1,...,L16         constant levels in ``OPS`` order (0..4), optionally ``,MODE`` (sampling mode)
switch:R/A/B             ``fixed:A`` for rounds 1..R, then ``fixed:B`` (a two-phase schedule)
mix:A/B                  ``fixed:A`` or ``fixed:B``, drawn for every member every round (a random design over two)
=======================  =====================================================================
"""
from __future__ import annotations

from typing import Any

from adaptive_de.errors import UserError
from agents.base import Agent
from agents.baselines import (
    FixedAgent,
    MixAgent,
    NoneAgent,
    RandAugmentAgent,
    RandomAgent,
    SwitchAgent,
    TrivialAugmentAgent,
)
from agents.fitted import FittedAgent, FittedPriorAgent
from agents.population import (
    FamiliesPriorAgent,
    FlatPriorAgent,
    GridAgent,
    GridPriorAgent,
    LevelsPriorAgent,
    PBTAgent,
    PriorAgent,
    ProbeAgent,
    ReplayAgent,
    StrengthGridAgent,
    run_population,
)
from agents.sb3 import (
    A2CAgent,
    DQNAgent,
    PPOAgent,
    PPOFamiliesAgent,
    PPOFittedAgent,
    PPOFittedBanditAgent,
    PPOFittedOftenAgent,
    PPOFlatAgent,
    PPOGridAgent,
    PPOLevelsAgent,
    PPOReturnAgent,
    SB3Agent,
)

AGENTS: dict[str, type[Agent]] = {
    "ppo": PPOAgent,
    "prior": PriorAgent,
    "ppo_flat": PPOFlatAgent,
    "prior_flat": FlatPriorAgent,
    "replay": ReplayAgent,
    "ppo_return": PPOReturnAgent,
    "ppo_grid": PPOGridAgent,
    "prior_grid": GridPriorAgent,
    "ppo_families": PPOFamiliesAgent,
    "prior_families": FamiliesPriorAgent,
    "ppo_levels": PPOLevelsAgent,
    "prior_levels": LevelsPriorAgent,
    "probe": ProbeAgent,
    "fitted": FittedAgent,
    "ppo_fitted": PPOFittedAgent,
    "ppo_fitted_often": PPOFittedOftenAgent,
    "ppo_fitted_bandit": PPOFittedBanditAgent,
    "prior_fitted": FittedPriorAgent,
    "a2c": A2CAgent,
    "dqn": DQNAgent,
    "pbt": PBTAgent,
    "best_fixed": GridAgent,
    "strength_grid": StrengthGridAgent,
    "random": RandomAgent,
    "none": NoneAgent,
    "randaugment": RandAugmentAgent,
    "trivialaugment": TrivialAugmentAgent,
    "fixed": FixedAgent,
    "switch": SwitchAgent,
    "mix": MixAgent,
}
# agents named with an argument: the option it fills
ARGUMENTS = {"fixed": "levels", "switch": "schedule", "mix": "recipes",
             **{name: "source" for name in ("replay", "fitted", "ppo_fitted", "ppo_fitted_often", "ppo_fitted_bandit",
                                            "prior_fitted")}}
ARGUMENT_FORMS = {"fixed": "L1,...,L16[,MODE]", "switch": "R/A/B", "mix": "A/B",
                  **{name: "FILE" for name in ARGUMENTS if name not in ("fixed", "switch", "mix")}}
AGENT_FORMS = ", ".join(f"{name}:{ARGUMENT_FORMS[name]}" if name in ARGUMENTS else name for name in AGENTS)


def agent_class(spec: str) -> tuple[type[Agent], str | None]:
    """The factory for an agent spec and its argument (``fixed:...``, ``replay:...``, ``fitted:...``); an unknown
    name is a UserError."""
    name, sep, arg = spec.partition(":")
    if name not in AGENTS or (name in ARGUMENTS) != bool(sep):
        raise UserError(f"unknown agent {spec!r}; choose one of: {AGENT_FORMS}")
    return AGENTS[name], arg if sep else None


def make_agent(spec: str, env: Any, *, seed: int = 0, **options: Any) -> Agent:
    """Build the agent named by ``spec`` for ``env`` (a VecEnv for learners; anything with spaces for baselines)."""
    cls, arg = agent_class(spec)
    if arg is not None:
        options[ARGUMENTS[spec.partition(":")[0]]] = arg
    return cls(env, seed=seed, **options)


__all__ = ["AGENTS", "AGENT_FORMS", "A2CAgent", "Agent", "DQNAgent", "FamiliesPriorAgent", "FittedAgent",
           "FittedPriorAgent", "FixedAgent", "FlatPriorAgent", "GridAgent", "GridPriorAgent", "LevelsPriorAgent",
           "MixAgent", "NoneAgent", "PBTAgent", "PPOAgent", "PPOFamiliesAgent", "PPOFittedAgent",
           "PPOFittedBanditAgent", "PPOFittedOftenAgent",
           "PPOFlatAgent", "PPOGridAgent", "PPOLevelsAgent", "PPOReturnAgent", "PriorAgent", "ProbeAgent",
           "RandAugmentAgent", "RandomAgent", "ReplayAgent", "SB3Agent", "StrengthGridAgent", "SwitchAgent",
           "TrivialAugmentAgent",
           "agent_class", "make_agent", "run_population"]

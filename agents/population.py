"""Population controllers: how each method chooses the members' actions in a ``PopulationEnv`` run.

Every method of a comparison trains the same population (N members x the same steps, the same exploit
schedule, the same selection split) and differs only in how it acts:

==============  ===================================================================================
method          actions
==============  ===================================================================================
ppo             learned during the run over one magnitude (``STRENGTH_MENU``: an offset of every op's
                level from the prior's centre), starting from its prior (``agents.sb3.PPOAgent``)
prior           drawn from ``ppo``'s prior every round, never updated (what PPO starts from: exploit only)
ppo_flat        ``ppo`` starting from a flat prior over the strengths instead (``agents.sb3.PPOFlatAgent``)
prior_flat      that flat prior, frozen: every member's strength drawn uniformly every round (its control)
ppo_return      ``ppo`` crediting each action with its rollout's rewards to the end (``agents.sb3.PPOReturnAgent``;
                its control is ``prior``)
ppo_grid        ``ppo_return`` choosing from ``best_fixed``'s candidates (``GRID_MENU``) from a flat prior
                (``agents.sb3.PPOGridAgent``): learning against selection over the same recipes
prior_grid      that flat prior, frozen: every member's candidate drawn uniformly every round (its control)
replay          drawn every round from how often a finished study's ``ppo`` chose each strength in that
                round (on other seeds): ppo's typical schedule without its in-run learning
ppo_families    learned during the run over one strength offset per op family (``FAMILIES``: geometric, photometric,
                degradation, occlusion), starting from every family at +2 (``agents.sb3.PPOFamiliesAgent``)
prior_families  that prior, frozen (what ppo_families starts from: exploit only)
ppo_levels      learned during the run over every op's level and the sampling mode, starting from
                ``prior_logits`` (``agents.sb3.PPOLevelsAgent``: a sixteenth of the signal per choice)
prior_levels    that per-op prior, frozen (what ppo_levels starts from: exploit only)
probe           every op's level uniform for every member every round (a random design for ``fitted``)
fitted          one recipe for every member: strength+2 edited by each op's effect, estimated from finished
                ``probe`` runs on other seeds (``agents.fitted``: experience carried across runs)
pbt             PBT over the levels (PBA-style): members start from per-op prior draws; a member that was
                exploited copies its donor's levels and sampling mode, then explores (each op
                resampled with p = 0.2, else shifted by -1, 0 or +1)
best_fixed      a grid of constant candidates, one per member (``GRID``); an exploited member copies
                its donor's candidate (truncation selection over the grid, no explore)
strength_grid   the same over ``ppo``'s own menu: members spread evenly over the strength offsets, ends
                included (``grid_strengths``); selection over what ``ppo`` chooses from, without learning
none, randaugment, trivialaugment, random, fixed:<levels>   the same for every member
==============  ===================================================================================

``run_population(agent, env)`` plays one whole run and returns the run's final member (see
``PopulationEnv.final``); learners learn inside it (their ``learn`` drives the env), the others act
round by round and ``observe`` the infos (where exploits are reported).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_de.augment import MAX_LEVEL, OPS
from adaptive_de.errors import UserError
from adaptive_de.presets import EnvConfig
from agents.base import Agent, RoundAware
from envs.face_parsing import SAMPLING_MODES
from envs.wrappers import DEGRADATION, GEOMETRIC, PHOTOMETRIC, menu_actions, recipe_action

# The prior: a generic face-parsing recipe that knows nothing of the test shift. Moderate geometry
# (rotation up to 20 deg, 1.26x scale, 10 % shifts), mirrored faces with the left/right swap, mild
# colour and degradation, no grayscale; uniform sampling. Each op's level is drawn around its centre.
PRIOR_LEVELS: dict[str, int] = {"rotate": 2, "scale": 2, "translate_x": 2, "translate_y": 2, "shear": 1,
                                "hflip": 4, "brightness": 2, "contrast": 2, "gamma": 1, "saturation": 1, "hue": 1,
                                "sharpness": 1, "blur": 1, "noise": 1, "grayscale": 0, "erase": 1}
PRIOR_MODE = "uniform"
PRIOR_SHARPNESS = 1.5  # logit drop per level of distance from the centre: P(centre) about 0.65


def prior_logits(centres: dict[str, int] = PRIOR_LEVELS) -> list[np.ndarray]:
    """Per action dimension (16 ops, then the sampling mode), the prior's logits (log-probabilities): each op's peaked
    at its level in ``centres``, the sampling mode at ``PRIOR_MODE``."""
    dims = []
    for op in OPS:
        logits = -PRIOR_SHARPNESS * np.abs(np.arange(MAX_LEVEL + 1) - centres[op])
        dims.append(logits - np.logaddexp.reduce(logits))
    mode = np.where(np.array(list(SAMPLING_MODES)) == PRIOR_MODE, 0.0, -PRIOR_SHARPNESS)
    dims.append(mode - np.logaddexp.reduce(mode))
    return dims


def sample_prior(rng: np.random.Generator) -> np.ndarray:
    """One action (16 levels, then the sampling mode's index) drawn from the prior with ``rng``."""
    return np.array([rng.choice(len(logits), p=np.exp(logits)) for logits in prior_logits()], dtype=np.int64)


# ppo acts on one number, RandAugment's insight: a single magnitude for every op. It is an offset added to
# the prior's centre level of every op but the flip and grayscale (which stay as the prior has them), so every
# sample informs the one choice instead of a sixteenth of it.
STRENGTHS = (-2, -1, 0, 1, 2)
UNSCALED_OPS = ("hflip", "grayscale")


# ppo_families acts on one magnitude per op family, the categories augmentation libraries sort their ops into: a
# menu between ppo's one number (every sample informs the one choice, but every op moves together) and ppo_levels'
# sixteen (any per-op recipe, a sixteenth of the signal per choice). Each sample informs a quarter of the choice, and
# a recipe can keep one family strong while it turns another down. Every scaled op is in exactly one family.
FAMILIES: dict[str, tuple[str, ...]] = {
    "geometric": GEOMETRIC,
    "photometric": PHOTOMETRIC,
    "degradation": tuple(op for op in DEGRADATION if op not in UNSCALED_OPS),
    "occlusion": ("erase",),
}


def family_levels(offsets: Sequence[int]) -> dict[str, int]:
    """The prior's centre levels with each family's offset (``offsets`` in ``FAMILIES`` order) added to its ops
    (clipped to 0..MAX_LEVEL); ``UNSCALED_OPS`` stay as the prior has them."""
    offset_of = {op: offset for ops, offset in zip(FAMILIES.values(), offsets, strict=True) for op in ops}
    return {op: level if op in UNSCALED_OPS else int(np.clip(level + offset_of[op], 0, MAX_LEVEL))
            for op, level in PRIOR_LEVELS.items()}


def strength_levels(offset: int) -> dict[str, int]:
    """The prior's centre levels with ``offset`` added to every op but ``UNSCALED_OPS`` (clipped to 0..MAX_LEVEL)."""
    return family_levels([offset] * len(FAMILIES))


Menu = dict[str, tuple[dict[str, int], str]]  # a Discrete menu's items: name -> (levels, sampling mode)
STRENGTH_MENU = {f"prior{offset:+d}": (strength_levels(offset), PRIOR_MODE) for offset in STRENGTHS}
"""``ppo``'s actions (an ``envs.VecMenuWrapper`` menu): name -> (levels, sampling mode), in STRENGTHS order."""


def peaked_strength_logits(centre: int) -> np.ndarray:
    """Log-probabilities of the ``STRENGTHS`` offsets, peaked at ``centre`` with the levels' prior's sharpness."""
    logits = -PRIOR_SHARPNESS * np.abs(np.array(STRENGTHS, dtype=float) - centre)
    return logits - np.logaddexp.reduce(logits)


def strength_prior_logits() -> list[np.ndarray]:
    """The strength prior's log-probabilities (one action dimension), peaked at offset 0 like the levels' prior."""
    return [peaked_strength_logits(0)]


def flat_strength_logits() -> list[np.ndarray]:
    """A flat prior over the strengths (one action dimension): every offset equally likely."""
    return [np.full(len(STRENGTHS), -np.log(len(STRENGTHS)))]


# Where ppo_families starts: every family at +2, strength+2, the strongest constant of ppo's menu and the best constant
# measured at 16 rounds (seeds 52-61 and 67-71, docs/LEARNING.md). From there a run's rewards have to tell which
# families to turn down; the prior's tails draw the lower offsets that let them.
FAMILY_START = 2


def family_prior_logits() -> list[np.ndarray]:
    """Per family (``FAMILIES`` order), the log-probabilities of the ``STRENGTHS`` offsets: peaked at
    ``FAMILY_START`` with the levels' prior's sharpness."""
    return [peaked_strength_logits(FAMILY_START)] * len(FAMILIES)


def family_action(choices: Sequence[int]) -> np.ndarray:
    """The env action (levels in OPS order, then the sampling mode's index) of one ``STRENGTHS`` index per family."""
    levels = family_levels([STRENGTHS[c] for c in choices])
    return recipe_action(levels, PRIOR_MODE)


# best_fixed's candidates (levels in OPS order, then the sampling mode's index): no candidate knows the test shift.
GRID: dict[str, list[int]] = {
    "geometric": [3, 3, 2, 2, 0, 4] + [0] * 10 + [0],
    "photometric": [0] * 6 + [3, 3, 1, 2, 2, 0, 2, 2, 0, 0] + [0],
    "geo+photo": [3, 3, 2, 2, 0, 4, 3, 3, 1, 2, 2, 0, 2, 2, 0, 2] + [0],
    "all-2": [2] * 16 + [0],
    "prior": [PRIOR_LEVELS[op] for op in OPS] + [0],
    "all-1": [1] * 16 + [0],
    "geo-strong": [4, 3, 3, 3, 1, 4] + [0] * 10 + [0],
    "all-3": [3] * 16 + [0],
}

# ppo_grid's menu: the candidates a population of the default size trains under best_fixed (member i takes
# candidate i), so ppo_grid against best_fixed compares learning with selection over the same recipes.
GRID_MEMBERS = EnvConfig.members
GRID_MENU = {name: (dict(zip(OPS, levels[:len(OPS)], strict=True)), list(SAMPLING_MODES)[levels[-1]])
             for name, levels in list(GRID.items())[:GRID_MEMBERS]}
"""``ppo_grid``'s actions (an ``envs.VecMenuWrapper`` menu): name -> (levels, sampling mode), in GRID order."""


def flat_grid_logits() -> list[np.ndarray]:
    """A flat prior over ``GRID_MENU`` (one action dimension): every candidate equally likely."""
    return [np.full(len(GRID_MENU), -np.log(len(GRID_MENU)))]


def family_changes(levels: np.ndarray) -> np.ndarray:
    """Per family (``FAMILIES`` order), the mean over its ops of the level minus ``ppo_families``' start level;
    ``levels``: (..., len(OPS)) in OPS order. Read off the levels a member trained, so clipped offsets count as the
    recipe they are."""
    levels = np.asarray(levels)
    start = family_levels([FAMILY_START] * len(FAMILIES))
    return np.stack([np.mean([levels[..., OPS.index(op)] - start[op] for op in ops], axis=0)
                     for ops in FAMILIES.values()], axis=-1)


class SeededAgent(Agent):
    """A non-learning controller with its own NumPy generator (saved with the agent, so a resumed run
    draws what the uninterrupted one would)."""

    def __init__(self, env: Any, *, name: str, seed: int = 0):
        super().__init__(env, name=name, seed=seed)
        self.rng = np.random.default_rng(seed)
        self.num_members = getattr(env, "num_envs", 1)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rng.bit_generator.state = state["rng"]


class PriorAgent(SeededAgent):
    """``ppo``'s prior, frozen: every member's strength offset drawn from it every round (``ppo``'s control)."""

    agent_name = "prior"
    menu = STRENGTH_MENU  # what it draws from
    logits = staticmethod(strength_prior_logits)  # the prior over ``menu`` it draws with

    def __init__(self, env: Any, *, seed: int = 0):
        super().__init__(env, name=self.agent_name, seed=seed)

    def sample(self) -> np.ndarray:
        item = self.rng.choice(len(self.menu), p=np.exp(self.logits()[0]))
        return menu_actions(self.menu)[item]

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self._batched(observation, self.sample), None


class FlatPriorAgent(PriorAgent):
    """The flat strength prior, frozen: every member's offset drawn uniformly every round (``ppo_flat``'s control)."""

    agent_name = "prior_flat"
    logits = staticmethod(flat_strength_logits)


class GridPriorAgent(PriorAgent):
    """The flat prior over ``GRID_MENU``, frozen: every member's candidate drawn uniformly every round (``ppo_grid``'s
    control)."""

    agent_name = "prior_grid"
    menu = GRID_MENU
    logits = staticmethod(flat_grid_logits)


class FamiliesPriorAgent(PriorAgent):
    """``ppo_families``' prior, frozen: every member's family offsets drawn from ``family_prior_logits`` every round
    (its control: exploit only)."""

    agent_name = "prior_families"

    def sample(self) -> np.ndarray:
        return family_action([self.rng.choice(len(STRENGTHS), p=np.exp(logits)) for logits in family_prior_logits()])


class LevelsPriorAgent(PriorAgent):
    """The per-op prior, frozen: every member's levels and mode drawn from ``prior_logits`` every round
    (``ppo_levels``'s control)."""

    agent_name = "prior_levels"

    def sample(self) -> np.ndarray:
        return sample_prior(self.rng)


class ProbeAgent(PriorAgent):
    """``probe``: every op's level drawn uniformly from 0..MAX_LEVEL for every member every round, sampling as the
    prior. A random design: each op's level is independent of the others', of the member and of the round, so the
    rewards of finished runs, regressed on the levels they trained, estimate each op's effect (``agents.fitted``)."""

    agent_name = "probe"

    def sample(self) -> np.ndarray:
        levels = self.rng.integers(MAX_LEVEL + 1, size=len(OPS))
        return np.array([*levels, list(SAMPLING_MODES).index(PRIOR_MODE)], dtype=np.int64)


class ReplayAgent(RoundAware, PriorAgent):
    """``replay:FILE``: ``ppo``'s schedule from a finished study, replayed without learning (PBA's schedule transfer).

    Each round, every member's strength offset is drawn from the frequencies with which ``ppo`` chose each
    offset in that round over the study's seeds (``FILE``: a ``benchmarks.learning`` JSON holding ppo's
    schedules). It differs from ``ppo`` in one thing: it does not adapt to this run's rewards, so
    ``ppo`` vs ``replay`` measures the in-run learning beyond the schedule ppo tends to find. The seeds it
    replays must not include the run's own (their rewards would leak in).
    """

    agent_name = "replay"

    def __init__(self, env: Any, *, source: str, seed: int = 0):
        super().__init__(env, seed=seed)
        self.name = f"replay:{source}"  # the spec, as fixed:... names its agent
        self.probabilities = self.checked_table(source, rounds=env.rounds, seed=seed)

    @classmethod
    def check_spec(cls, argument: str | None, *, rounds: int, seed: int) -> None:
        cls.checked_table(argument or "", rounds=rounds, seed=seed)

    @staticmethod
    def checked_table(source: str, *, rounds: int, seed: int) -> np.ndarray:
        """``replay_table(source)``'s frequencies, if they fit a run of ``rounds`` rounds on ``seed``."""
        probabilities, seeds = replay_table(source)
        if len(probabilities) != rounds:
            raise UserError(f"replay:{source} holds {len(probabilities)} rounds per run; this run has {rounds}")
        if seed in seeds:
            raise UserError(f"replay:{source} learned on seed {seed}, this run's own seed: its rewards would leak in")
        return probabilities

    def sample(self) -> np.ndarray:
        offset = self.rng.choice(len(STRENGTHS), p=self.probabilities[self.round])
        return menu_actions(STRENGTH_MENU)[offset]


def strength_index(menu: Menu = STRENGTH_MENU) -> dict[tuple[int, ...], int]:
    """Each item's levels (in OPS order) -> its offset's index in STRENGTHS, for a menu of one item per offset in
    STRENGTHS order (``STRENGTH_MENU``, or ``agents.fitted.fitted_menu``'s)."""
    return {tuple(action[:len(OPS)]): i for i, action in enumerate(menu_actions(menu))}


def strength_frequencies(runs: list, menu: Menu = STRENGTH_MENU) -> np.ndarray:
    """From the schedules of runs whose members took ``menu``'s actions (a study file's ``schedules[m]``), per
    round the frequency of each strength offset among their members (rows sum to 1, columns in STRENGTHS order); a
    member whose levels are no item of ``menu`` is a KeyError."""
    offsets = strength_index(menu)
    counts = np.zeros((len(runs[0]), len(STRENGTHS)))
    for run in runs:
        for r, round_ in enumerate(run):
            for levels in round_["levels"]:
                counts[r, offsets[tuple(levels)]] += 1
    return counts / counts.sum(axis=1, keepdims=True)


def replay_table(source: str) -> tuple[np.ndarray, list[int]]:
    """From a study file, per round the frequency of each strength offset among ppo's members (rows sum to 1),
    and the seeds they come from; a file without ppo's strength schedules is a UserError."""
    try:
        study = json.loads(Path(source).read_text())
        return strength_frequencies(study["schedules"]["ppo"]), [int(seed) for seed in study["seeds"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        raise UserError(f"replay:{source} is not a benchmarks.learning study file with ppo's strength schedules"
                        ) from None


class MemberAgent(SeededAgent):
    """Keeps one action per member; an exploited member takes its donor's action, then ``explore``s it."""

    def __init__(self, env: Any, *, name: str, seed: int = 0):
        super().__init__(env, name=name, seed=seed)
        self.actions = np.stack([self.initial(i) for i in range(self.num_members)])

    def initial(self, member: int) -> np.ndarray:
        raise NotImplementedError

    def explore(self, action: np.ndarray) -> np.ndarray:
        return action

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        observation = np.asarray(observation)
        if observation.ndim == 1:
            return self.actions[0].copy(), None
        return self.actions[:len(observation)].copy(), None

    def observe(self, infos: list[dict[str, Any]]) -> None:
        donors = [info.get("exploited_from") for info in infos]
        before = self.actions.copy()
        for member, donor in enumerate(donors):
            if donor is not None:
                self.actions[member] = self.explore(before[donor].copy())

    def state_dict(self) -> dict[str, Any]:
        import torch
        return {**super().state_dict(), "actions": torch.from_numpy(self.actions.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.actions = state["actions"].numpy().copy()


class PBTAgent(MemberAgent):
    """PBT over the levels without learning (Population Based Augmentation's exploit and explore)."""

    resample_p = 0.2

    def __init__(self, env: Any, *, seed: int = 0):
        self.prior = LevelsPriorAgent(env, seed=seed)
        super().__init__(env, name="pbt", seed=seed)

    def initial(self, member: int) -> np.ndarray:
        return self.prior.sample()

    def explore(self, action: np.ndarray) -> np.ndarray:
        levels = action[:len(OPS)]
        resample = self.rng.random(len(OPS)) < self.resample_p
        shifted = np.clip(levels + self.rng.integers(-1, 2, len(OPS)), 0, MAX_LEVEL)
        levels = np.where(resample, self.rng.integers(0, MAX_LEVEL + 1, len(OPS)), shifted)
        mode = self.rng.integers(len(SAMPLING_MODES)) if self.rng.random() < self.resample_p else action[-1]
        return np.array([*levels, mode], dtype=np.int64)


class GridAgent(MemberAgent):
    """``best_fixed``: member i trains grid candidate i (cycling); exploited members copy the donor's candidate."""

    def __init__(self, env: Any, *, seed: int = 0):
        super().__init__(env, name="best_fixed", seed=seed)

    def initial(self, member: int) -> np.ndarray:
        return np.array(list(GRID.values())[member % len(GRID)], dtype=np.int64)


def grid_strengths(members: int) -> list[int]:
    """The strength offsets ``strength_grid``'s members start from: spread evenly over ``STRENGTHS``, both ends
    included, so that no end of the menu is left out whatever the population's size (4 members: -2, -1, +1, +2)."""
    spots = np.rint(np.linspace(0, len(STRENGTHS) - 1, members)).astype(int)
    return [STRENGTHS[i] for i in spots]


class StrengthGridAgent(MemberAgent):
    """``strength_grid``: ``best_fixed`` over ``ppo``'s menu. Member i holds ``grid_strengths``' offset i all run;
    an exploited member copies its donor's offset. It can end on any offset the grid holds without knowing it in
    advance, so ``ppo`` against it is learning against selection over the very menu ``ppo`` chooses from."""

    def __init__(self, env: Any, *, seed: int = 0):
        super().__init__(env, name="strength_grid", seed=seed)

    def initial(self, member: int) -> np.ndarray:
        return menu_actions(STRENGTH_MENU)[STRENGTHS.index(grid_strengths(self.num_members)[member])]


def run_population(agent: Agent, env, *, on_round: Callable[[dict[str, Any]], None] | None = None,
                   checkpoint: Callable[[], None] | None = None, resumed: bool = False) -> dict[str, Any]:
    """Play the population run in ``env`` to its end with ``agent``; returns ``env.final``.

    A learner learns while it acts (its SB3 ``learn`` drives the env for ``rounds x members`` steps);
    the others act round by round. ``on_round`` gets ``{"round", "rewards", "infos"}`` after every
    round (the infos hold the applied levels and sampling modes); ``checkpoint()`` is called where
    agent and env can be saved consistently (after each round; for a learner, after each update).
    ``resumed``: continue a restored env and agent.
    """
    total = env.rounds * env.num_envs
    if not resumed:
        env.seed(env.config.seed)  # every method's run starts from the same seeds, learners included
    if agent.learns:
        from agents.callbacks import RoundCallback
        if resumed:  # SB3 continues from _last_obs instead of resetting the env
            agent.model._last_obs = env.observations()
            agent.model._last_episode_starts = np.zeros(env.num_envs, dtype=bool)
        agent.learn(total - (agent.num_timesteps if resumed else 0), callback=RoundCallback(on_round, checkpoint),
                    reset_num_timesteps=not resumed)
        return env.final
    if resumed:
        observations = env.observations()
    else:
        env.set_options(agent.episode_options or {})
        observations = env.reset()
    while env.final is None:
        actions, _ = agent.predict(observations)
        observations, rewards, _, infos = env.step(actions)
        agent.observe(infos)
        agent._timesteps += env.num_envs
        if on_round is not None:
            on_round({"round": infos[0]["round"], "rewards": rewards, "infos": infos})
        if checkpoint is not None and env.final is None:
            checkpoint()
    return env.final


def play_method(env, agent: Agent, test, *, on_round: Callable[[dict[str, Any]], None] | None = None,
                checkpoint: Callable[[], None] | None = None, resumed: bool = False,
                schedule: list | None = None) -> dict[str, Any]:
    """One method's whole population run, then its final member scored once on ``test`` (a split set).

    Returns the comparison row: ``test_mean_f1``, ``test_f1``, ``test_fp_rate``, ``wall_seconds``,
    ``compute_inner_steps`` (every member's steps, and the agent's ``search_inner_steps``), ``best_member``,
    ``selection_reward`` (each member's score on the selection subset) and ``schedule`` (per round, each member's
    levels, sampling mode and reward; levels ``None`` under a policy override). ``schedule``: the rounds a resumed
    run already played.
    """
    import time

    schedule = [] if schedule is None else schedule
    start = time.perf_counter()

    def record(round_: dict[str, Any]) -> None:
        schedule.append({"levels": [info["levels"] for info in round_["infos"]],
                         "sampler": [info["sampler"] for info in round_["infos"]],
                         "rewards": [float(reward) for reward in round_["rewards"]]})
        if on_round is not None:
            on_round(round_)

    final = run_population(agent, env, on_round=record, checkpoint=checkpoint, resumed=resumed)
    wall = time.perf_counter() - start
    compute = env.compute_inner_steps + agent.search_inner_steps
    return comparison_row(env.evaluate_final(test), wall_seconds=wall, compute_inner_steps=compute,
                          best_member=final["best"], selection_reward=final["selection"], schedule=schedule)


def comparison_row(scores: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A method's row of the comparison: its final model's test ``scores`` (``evaluate``) and ``fields``."""
    return {"test_mean_f1": scores["mean_f1"], "test_f1": scores["f1"], "test_fp_rate": scores["fp_rate"], **fields}

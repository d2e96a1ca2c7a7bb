"""``fitted:FILE``: experience carried across runs. Each op's effect on the reward, estimated from finished ``probe``
runs on other seeds, edits one recipe that every member then trains.

Within one run a learner sees 64 rewards (4 members x 16 rounds) of noise about 1 point each: enough to tell one
magnitude or one family's direction, not sixteen ops' (docs/LEARNING.md, ``levels16`` and ``families16``). Runs of
``probe`` (every op's level uniform for every member every round, so the levels are a random design) pool their
rewards across seeds. Within each run's round the rewards are compared between members (the population's reward
is already group-relative), so a least-squares fit of the rewards on the 16 levels, with one intercept per run and
round, estimates each op's effect per level and its standard error.

The recipe starts from ``strength+2`` (every scaled op two levels above the prior's centre, the strongest constant
measured at 16 rounds) and moves an op to the end of its range only where the evidence is clear: to ``MAX_LEVEL``
where the effect's 95% interval is above 0, to 0 where it is below, so ``fitted`` against ``strength+2`` differs
in exactly the ops the probe runs found. The probe runs' inner steps count into every ``fitted`` run's compute.

``ppo_fitted:FILE`` is ``ppo`` started from that recipe: its menu is ``ppo``'s one magnitude with the fit's edits
kept in every item (``fitted_menu``), its prior peaked at the fitted recipe (``fitted_prior_logits``), so learning
within the run starts where experience across runs left off; ``prior_fitted:FILE``, that prior frozen, is its control.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_de.augment import MAX_LEVEL, OPS
from adaptive_de.errors import UserError
from agents.baselines import ConstantAgent
from agents.population import PRIOR_MODE, STRENGTHS, Menu, PriorAgent, peaked_strength_logits, strength_levels
from envs.population import exploit_pairs
from envs.wrappers import recipe_action

PROBE = "probe"  # the method whose runs ``fitted`` learns from
BASE_OFFSET = 2  # the recipe the edits start from: strength+2
EDIT_Z = 1.96  # an op is edited only where its effect's 95% interval excludes 0


def overwritten(run: list, exploit_every: int, count: int) -> list[set[int]]:
    """Per round of one stored run (a list of rounds, each with its members' ``rewards``), the members whose model an
    exploit replaced after that round. The stored rewards are each round's gains less their mean, so their running
    sums order the members as their reward-subset values did; ``envs.population.exploit_pairs`` is replayed on them,
    as ``PopulationEnv`` ran it after every ``exploit_every``-th round but the last, replacing ``count`` members."""
    values = np.zeros(len(run[0]["rewards"]))
    out: list[set[int]] = []
    for t, round_ in enumerate(run, start=1):
        values += round_["rewards"]
        losers = set()
        if t < len(run) and t % exploit_every == 0:
            for loser, donor in exploit_pairs(values, count):
                values[loser] = values[donor]
                losers.add(loser)
        out.append(losers)
    return out


def probe_samples(runs: list, lag: int = 0, exploit: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From ``probe``'s schedules (a study file's ``schedules["probe"]``, one list of rounds per run), every
    member-round's levels (n, len(OPS)), reward (n,) and group (n,): one group per run and round.

    With ``lag`` k > 0 the "reward" of a member's round t is the sum of its rewards in rounds t..t+k: its value's
    change from before round t to k rounds after it, so a fit on round t's levels measures what that round's choice
    still does k rounds later (the member's later levels are drawn independently of it). ``exploit`` (the run's
    ``exploit_every`` and members replaced) is then needed: a member whose model an exploit replaced within those
    rounds is left out, and rounds without k rounds after them are too."""
    if lag and exploit is None:
        raise ValueError("a lagged reward needs the runs' exploit schedule")
    levels, rewards, groups = [], [], []
    for r, run in enumerate(runs):
        replaced = overwritten(run, *exploit) if lag else [set()] * len(run)
        for t in range(len(run) - lag):
            lost = set().union(*replaced[t:t + lag])
            kept = [i for i in range(len(run[t]["rewards"])) if i not in lost]
            levels += [run[t]["levels"][i] for i in kept]
            rewards += [sum(run[t + k]["rewards"][i] for k in range(lag + 1)) for i in kept]
            groups += [r * len(run) + t] * len(kept)
    return np.asarray(levels, dtype=float), np.asarray(rewards, dtype=float), np.asarray(groups)


def within_groups(values: np.ndarray, groups: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``values`` (samples first) less their group's mean, weighted by ``weights`` where given: a round's own offset
    removed, as one intercept per round would remove it."""
    out = np.asarray(values, dtype=float).copy()
    for g in np.unique(groups):
        members = groups == g
        out[members] -= np.average(out[members], axis=0, weights=None if weights is None else weights[members])
    return out


def recipe_edits(levels: dict[str, int], base: dict[str, int]) -> str:
    """The ops where ``levels`` differ from ``base``, as ``op base -> level``; ``none`` where none do."""
    return ", ".join(f"{op} {base[op]} -> {levels[op]}" for op in OPS if levels[op] != base[op]) or "none"


def op_effects(levels: np.ndarray, rewards: np.ndarray, groups: np.ndarray,
               weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Least squares of ``rewards`` on ``levels`` with one intercept per group: per op (OPS order) the ``effect``
    (reward points per level) and its standard error ``se`` (from the residuals, classical). ``weights`` (one per
    sample; equal by default) make it weighted least squares, for rewards whose noise differs between rounds; the
    ``se`` then take the weights as inverse noise variances up to one common factor."""
    w = np.ones(len(rewards)) if weights is None else np.asarray(weights, dtype=float)
    # the within-group transform removes the intercepts
    x, y = within_groups(levels, groups, w), within_groups(rewards, groups, w)
    root = np.sqrt(w)
    x, y = x * root[:, None], y * root
    effect, *_ = np.linalg.lstsq(x, y, rcond=None)
    rounds = len(np.unique(groups))
    dof = len(y) - rounds - x.shape[1]
    if dof <= 0:
        raise UserError(f"{len(y)} probe samples in {rounds} rounds cannot estimate {x.shape[1]} op effects")
    residual = y - x @ effect
    covariance = residual @ residual / dof * np.linalg.inv(x.T @ x)
    return {"effect": effect, "se": np.sqrt(np.diag(covariance))}


def fitted_levels(effect: np.ndarray, se: np.ndarray, z: float = EDIT_Z) -> dict[str, int]:
    """``strength+2``'s levels, each op with a clear effect moved to the end of its range that effect points to."""
    levels = strength_levels(BASE_OFFSET)
    for op, e, s in zip(OPS, effect, se, strict=True):
        if e - z * s > 0:
            levels[op] = MAX_LEVEL
        elif e + z * s < 0:
            levels[op] = 0
    return levels


def fitted_menu(levels: dict[str, int]) -> Menu:
    """``ppo``'s strength menu with the fit's edits (the ops where ``levels`` differ from ``strength+2``'s) kept at
    their fitted level in every item: one item per offset in STRENGTHS order, the fitted recipe itself at
    ``BASE_OFFSET``."""
    base = strength_levels(BASE_OFFSET)
    edits = {op: level for op, level in levels.items() if level != base[op]}
    return {f"strength{offset:+d}+fit": ({**strength_levels(offset), **edits}, PRIOR_MODE) for offset in STRENGTHS}


def fitted_prior_logits() -> list[np.ndarray]:
    """The prior over ``fitted_menu`` (one action dimension): peaked at the fitted recipe, ``BASE_OFFSET``."""
    return [peaked_strength_logits(BASE_OFFSET)]


def read_probe(source: str) -> dict[str, Any]:
    """A study file holding ``probe``'s schedules with rewards (``runs``, as stored) and their ``samples``;
    otherwise a UserError."""
    try:
        study = json.loads(Path(source).read_text())
        runs = study["schedules"][PROBE]
        samples = probe_samples(runs)
        compute = int(study["methods"][PROBE]["compute_inner_steps"]) * len(runs)
        seeds = [int(seed) for seed in study["seeds"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        raise UserError(f"{source} is not a benchmarks.learning study file with {PROBE}'s schedules and "
                        "rewards") from None
    return {"samples": samples, "runs": runs, "compute_inner_steps": compute, "seeds": seeds}


class FittedAgent(ConstantAgent):
    """``fitted:FILE``: every member trains ``fitted_levels`` of the ``probe`` runs in ``FILE`` (other seeds),
    uniform sampling; those runs' inner steps are its ``search_inner_steps``."""

    def __init__(self, env: Any, *, source: str, seed: int = 0):
        levels, search = fitted_search(source, seed=seed)
        super().__init__(env, name=f"fitted:{source}", action=recipe_action(levels, PRIOR_MODE), seed=seed)
        self.search_inner_steps = search

    @classmethod
    def check_spec(cls, argument: str | None, *, rounds: int, seed: int) -> None:
        fitted_search(argument or "", seed=seed)


class FittedPriorAgent(PriorAgent):
    """``prior_fitted:FILE``: ``ppo_fitted``'s prior, frozen; every member's offset drawn from ``fitted_prior_logits``
    over ``fitted_menu`` every round (its control: exploit only). The probe runs' steps count, as for ``fitted``."""

    agent_name = "prior_fitted"
    logits = staticmethod(fitted_prior_logits)

    def __init__(self, env: Any, *, source: str, seed: int = 0):
        super().__init__(env, seed=seed)
        levels, self.search_inner_steps = fitted_search(source, seed=seed)
        self.name, self.menu = f"prior_fitted:{source}", fitted_menu(levels)

    check_spec = FittedAgent.check_spec


def fitted_search(source: str, *, seed: int) -> tuple[dict[str, int], int]:
    """``fitted_levels`` of the probe runs in ``source`` and the inner steps they spent, if those runs did not train
    on ``seed`` (their rewards would leak in); otherwise a UserError."""
    probe = read_probe(source)
    if seed in probe["seeds"]:
        raise UserError(f"the probe runs in {source} trained on seed {seed}, this run's own seed: their rewards "
                        "would leak in")
    return fitted_recipe(probe), probe["compute_inner_steps"]


def fitted_recipe(probe: dict[str, Any]) -> dict[str, int]:
    """The recipe every probe reader builds on: ``fitted_levels`` of the op effects fitted to the probe's samples."""
    return fitted_levels(**op_effects(*probe["samples"]))

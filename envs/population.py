"""``PopulationEnv``: N inner trainers trained side by side as one SB3 ``VecEnv``; the agent learns during the run.

One *episode* is one whole population training run; one *step* trains every member one round
(``steps_per_round`` inner steps) with its own action, then scores every member on the reward subset
of val (its first ``val_subset`` images). So ``rounds x members`` agent samples come out of one run,
and the run's compute is also what produces the final model (OHL-AutoAugment, Lin et al. 2019;
Population Based Augmentation, Ho et al. 2019).

**Members.** Every member starts from the same model (the cached CE-pretrained warm-up, or the seeded
initialisation), with a fresh optimiser. All members of a round draw the same batch indices under the
same sampling mode (common random numbers: the round's sampler seed is shared), so differences
between members come from their actions. Augmentation draws and dropout have a stream per member, or
with ``common_draws=True`` one per round that every member shares (the same uniforms, signs, noise and
REINFORCE samples at each step), so two members differ by their actions and their histories only.

**Action, observation** per member: as ``FaceParsingAugmentEnv``'s (16 levels and a sampling mode;
progress, loss, val-subset scores, last action). ``reset`` options ``{"policy": SPEC}`` train the whole
run with that policy object for every member (RandAugment, TrivialAugment, none).

**Reward** (group-relative): member i's improvement of the reward-subset value V over the round, minus
the population's mean improvement, in points (x100). Members are compared within the round they
share, so the learning-rate schedule and the round's batches cancel out.

**Exploit** (PBT truncation selection): after every ``exploit_every``-th round but the last, the
``exploit_fraction`` worst members (at least one) take the model, optimiser and sampler state of
the best ones; ``info["exploited_from"]`` names the donor (``None`` otherwise), so a controller that
keeps per-member hyper-parameters (PBT) can copy and perturb them. Members keep their RNG streams.

**End of the run.** After the last round every member is scored on the *selection* subset (the val
images after the reward subset, disjoint from it); the best one is the run's result:
``final`` holds its index, every member's selection score and its trainer state. The next step (or
``reset``) starts a new run from the start state; ``final`` survives until then.

**Backends** (``envs.members``): ``backend="inprocess"`` (default) trains the members one after another
in this process; ``backend="ray"`` makes each member a Ray actor (``backend_options``: ``address``,
``num_cpus``, ``num_gpus`` per member), trains a round's members at the same time, and restarts a member
whose actor dies from its last state. On the CPU, with as many torch threads per member, both give the
same numbers.

``state_dict``/``load_state_dict`` capture every member (model, optimiser, sampler, RNGs) and the
run's counters, so a run restored at a round boundary continues bit-identically on CPU.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from adaptive_de.augment import MAX_LEVEL, OPS, LevelPolicy, Policy, make_policy
from adaptive_de.errors import UserError
from adaptive_de.presets import EnvConfig
from adaptive_de.trainer import InnerTrainer
from envs.face_parsing import (
    LEVEL_P,
    SAMPLING_MODES,
    build_trainer,
    isolated_rng,
    observation,
    score_info,
)
from envs.members import InProcess, Member, augment_seed, make_members, round_seeds

POINTS = 100.0  # rewards in points of the reward's value (x100), readable beside F1 in %


def exploit_count(config: EnvConfig) -> int:
    """How many members an exploit replaces: ``exploit_fraction`` of the population, at least one."""
    return max(1, int(config.exploit_fraction * config.members))


def exploit_pairs(values: Sequence[float], count: int) -> list[tuple[int, int]]:
    """PBT truncation selection on the members' reward-subset values: ``(loser, donor)`` pairs, the ``count`` worst
    members each taking one of the ``count`` best (the worst takes the best); of tied members the later counts as
    worse. Pure, so an analysis of stored runs can replay it on values rebuilt from their rewards."""
    order = sorted(range(len(values)), key=lambda i: (values[i], -i))
    return list(zip(order[:count], reversed(order[-count:]), strict=True))


def check_population(config: EnvConfig, val_size: int | None = None) -> None:
    """Raise UserError for sizes a population run cannot use (before any training)."""
    if config.members < 2:
        raise UserError(f"a population needs at least 2 members, got members={config.members}")
    if not 1 <= config.exploit_every <= config.rounds:
        raise UserError(f"exploit_every={config.exploit_every} must be between 1 and the run's rounds "
                        f"({config.rounds})")
    if config.rounds % config.exploit_every:
        raise UserError(f"exploit_every={config.exploit_every} does not divide rounds={config.rounds}")
    if not 0 < config.exploit_fraction <= 0.5:
        raise UserError(f"exploit_fraction must be in (0, 0.5], got {config.exploit_fraction}")
    if val_size is not None and val_size <= config.val_subset:
        raise UserError(f"the val split has {val_size} images: none is left for selection after the "
                        f"{config.val_subset}-image reward subset (val_subset)")


class PopulationEnv(VecEnv):
    """A population of inner trainers as one ``VecEnv`` (see the module docstring).

    Args:
        preset: env preset (``adaptive_de.presets.PRESETS``) giving the sizes.
        progress: show a progress bar while pre-training a missing warm-up checkpoint.
        backend: ``"inprocess"`` or ``"ray"`` (see the module docstring); ``backend_options`` go to it.
        **options: any ``EnvConfig`` field over the preset (members, exploit_every, exploit_fraction,
            rounds, steps_per_round, val_subset, data, inner_loss, reward, seed, device, ...).
    """

    render_mode = None

    def __init__(self, preset: str = "cpu", *, progress: bool = False, backend: str = "inprocess",
                 backend_options: dict[str, Any] | None = None, **options: Any):
        self.config = c = EnvConfig.from_preset(preset, **options)
        check_population(c)
        first = build_trainer(c, progress=progress)
        check_population(c, len(first.data["val"]))
        self._start_state = copy.deepcopy(first.state_dict())
        # This process's member: the start state and scores, the val subsets, the data's shapes, and (with Ray)
        # the final model. In-process it is also member 0.
        lead = Member(c, trainer=first)
        self.reference = first
        self.members = make_members(backend, c, lead, c.members, **(backend_options or {}))
        self.scheme = first.scheme
        self.class_names: tuple[str, ...] = self.scheme.classes
        self.rounds = c.rounds
        self.reward_fn = lead.reward_fn
        self.reward_set, self.selection_set = lead.sets["reward"], lead.sets["selection"]
        observation_space = spaces.Box(0.0, 1.0, shape=(4 + self.scheme.num_classes + len(OPS) + 1,), dtype=np.float32)
        action_space = spaces.MultiDiscrete([MAX_LEVEL + 1] * len(OPS) + [len(SAMPLING_MODES)])
        super().__init__(c.members, observation_space, action_space)
        self._start_scores = lead.score("reward")
        self.final: dict[str, Any] | None = None
        self._actions: np.ndarray | None = None
        self._override_spec: str | None = None
        self._start_run(self.config.seed)

    @property
    def trainers(self) -> list[InnerTrainer]:
        """The members' live trainers (in-process backend only; Ray members live in their actors)."""
        if not isinstance(self.members, InProcess):
            raise AttributeError(f"the {self.members.name} backend's trainers live in its actors")
        return self.members.trainers

    @property
    def member_steps(self) -> int:
        """Inner training steps of one member's whole run."""
        return self.config.episode_steps

    @property
    def compute_inner_steps(self) -> int:
        """Inner training steps of one whole run, every member counted (selection is compute too)."""
        return self.config.members * self.member_steps

    # ------------------------------------------------------------------ runs
    def _start_run(self, seed: int) -> None:
        """Every member back to the start state; per-member augmentation streams from ``seed``."""
        self._run_seed = int(seed)
        self.members.call("start", [(self._start_state, augment_seed(self._run_seed, i)) for i in range(self.num_envs)])
        self._round = 0
        self._scores = [self._start_scores] * self.num_envs
        self._values = [self._start_scores["reward"]] * self.num_envs
        self._last_actions = np.zeros((self.num_envs, len(OPS) + 1), dtype=np.int64)
        self._last_losses = [0.0] * self.num_envs
        self._needs_reset = False

    def reset(self) -> np.ndarray:
        """Start a new run (seed: the last ``seed()`` call's, else the config's); options as in the docstring."""
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else self.config.seed
        options = self._options[0] if self._options else {}
        unknown = set(options or {}) - {"policy"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; the only option is 'policy'")
        self._override_spec = (options or {}).get("policy")
        self._reset_seeds()
        self._reset_options()
        self.final = None
        self._start_run(seed)
        return self.observations()

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs, -1)
        for action in actions:
            if not self.action_space.contains(action):
                raise ValueError(f"action {action.tolist()} is not in {self.action_space}")
        self._actions = actions

    def step_wait(self):
        if self._needs_reset:  # the previous run ended: its final member stays readable until now
            self.final = None
            self._start_run(self._run_seed + 1)
        actions, self._actions = self._actions, None
        self._round += 1
        previous = list(self._values)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        plans = [self._member_policy(action) for action in actions]
        modes = [list(SAMPLING_MODES)[int(action[-1])] for action in actions]
        results = self.members.call("play_round", [
            (policy, mode, *round_seeds(self.config, self._run_seed, self._round, i))
            for i, ((policy, _), mode) in enumerate(zip(plans, modes, strict=True))])
        for i, (action, (_, levels), mode, result) in enumerate(zip(actions, plans, modes, results, strict=True)):
            stats = result["stats"]
            self._last_actions[i] = action
            self._last_losses[i] = stats["loss"] if math.isfinite(stats["loss"]) else 0.0
            self._scores[i] = result["scores"]
            self._values[i] = self._scores[i]["reward"]
            infos[i].update(levels=levels, sampler=mode, train_loss=stats["loss"], train_reward=stats["reward"],
                            lr=stats["lr"], inner_step=stats["inner_step"], nonfinite=result["error"] is not None)
            if result["error"] is not None:  # the member keeps its model; its round scores as no improvement
                infos[i]["error"] = result["error"]
        gains = np.array(self._values) - np.array(previous)
        rewards = (POINTS * (gains - gains.mean())).astype(np.float32)
        donors: list[int | None] = [None] * self.num_envs
        done = self._round >= self.rounds
        if not done and self._round % self.config.exploit_every == 0:
            donors = self._exploit()
        for i, info in enumerate(infos):
            info.update(round=self._round, member=i, exploited_from=donors[i], **score_info(self._scores[i]))
        observations = self.observations()
        if done:
            self._finish()
            for i, info in enumerate(infos):
                info.update(terminal_observation=observations[i], selection_reward=self.final["selection"][i],
                            best_member=self.final["best"])
            observations = self._start_observations()
            self._needs_reset = True
        return observations, rewards, np.full(self.num_envs, done), infos

    def _member_policy(self, action: np.ndarray) -> tuple[Policy, list[int] | None]:
        if self._override_spec is not None:
            return make_policy(self._override_spec, self.scheme), None
        levels = [int(v) for v in action[:len(OPS)]]
        return LevelPolicy(levels, p=LEVEL_P, scheme=self.scheme), levels

    def _exploit(self) -> list[int | None]:
        """The worst members take the best members' model, optimiser and sampler state (not their RNGs)."""
        donors: list[int | None] = [None] * self.num_envs
        for loser, winner in exploit_pairs(self._values, exploit_count(self.config)):
            self.members.copy_member(loser, winner)
            self._values[loser], self._scores[loser] = self._values[winner], self._scores[winner]
            donors[loser] = winner
        return donors

    def _finish(self) -> None:
        """Score every member on the selection subset; the best is the run's final model."""
        selection = [scores["reward"] for scores in self.members.call("score", [("selection",)] * self.num_envs)]
        best = int(np.argmax(selection))
        state = self.members.call("state_dict", members=[best])[0]
        self.final = {"best": best, "selection": selection, "state": copy.deepcopy(state)}

    def evaluate_final(self, split: str | Any = "test") -> dict[str, Any]:
        """The final (best) member's scores on a split (``trainer.evaluate``), once the run has ended."""
        if self.final is None:
            raise RuntimeError("no finished run: the population's last round has not been played")
        return self.members.call("evaluate", [(split,)], members=[self.final["best"]])[0]

    def final_trainer(self) -> InnerTrainer:
        """A trainer holding the final (best) member's model, in this process (e.g. to draw its predictions)."""
        if self.final is None:
            raise RuntimeError("no finished run: the population's last round has not been played")
        if isinstance(self.members, InProcess):
            return self.members.trainers[self.final["best"]]
        with isolated_rng(self.reference.device):
            self.reference.load_state_dict(self.final["state"])
        return self.reference

    # ------------------------------------------------------------------ observations
    def observations(self) -> np.ndarray:
        """The members' current observations (what a restored run's agent continues from)."""
        return np.stack([observation(self._scores[i], self._round / self.rounds, self._last_losses[i],
                                     self._last_actions[i]) for i in range(self.num_envs)])

    def _start_observations(self) -> np.ndarray:
        zeros = np.zeros(len(OPS) + 1, dtype=np.int64)
        return np.stack([observation(self._start_scores, 0.0, 0.0, zeros)] * self.num_envs)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Every member's trainer state and the run's counters (tensors and plain data: weights-only loadable).
        Like ``nn.Module.state_dict``, the tensors are the live ones: save or copy them before training on."""
        return {"members": self.members.call("state_dict"), "round": self._round, "run_seed": self._run_seed,
                "values": list(self._values), "scores": copy.deepcopy(self._scores),
                "last_actions": torch.from_numpy(self._last_actions.copy()), "last_losses": list(self._last_losses),
                "override": self._override_spec, "needs_reset": self._needs_reset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["members"]) != self.num_envs:
            raise ValueError(f"the state has {len(state['members'])} members, this population {self.num_envs}")
        self.members.call("load_state_dict", [(member,) for member in state["members"]])
        self._round, self._run_seed = int(state["round"]), int(state["run_seed"])
        self._values, self._scores = list(state["values"]), copy.deepcopy(state["scores"])
        self._last_actions = state["last_actions"].numpy().copy()
        self._last_losses = list(state["last_losses"])
        self._override_spec, self._needs_reset = state["override"], bool(state["needs_reset"])

    # ------------------------------------------------------------------ VecEnv plumbing
    def close(self) -> None:
        self.members.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [getattr(self, method_name)(*args, **kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

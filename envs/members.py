"""Where a population's members live: ``Member`` (one trainer and a round's work) and the two backends.

``InProcess`` keeps every member in this process and runs them one after another. ``RayMembers``
runs each member as a Ray actor (``num_cpus``/``num_gpus`` per member), so a round's members train at
the same time, on one machine or a cluster; exploit copies go through Ray's object store, from actor
to actor. Both run the same ``Member`` code, so on the CPU, at the same number of torch threads per
member, they give the same numbers.

A Ray member whose actor dies (a killed process, a lost node) is restarted and given its state from
the end of its last completed call, and the call it was running is replayed: the run completes, the
member loses at most the round it was training, and the numbers are those of an undisturbed run
(every round's randomness is seeded by the population, not drawn from a live stream).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from adaptive_de.augment import Policy
from adaptive_de.data import FaceParsingSet
from adaptive_de.errors import UserError
from adaptive_de.presets import BACKENDS, EnvConfig
from adaptive_de.rewards import get_reward
from adaptive_de.trainer import InnerTrainer, NonFiniteLossError
from envs.face_parsing import SAMPLING_MODES, build_trainer, isolated_rng, val_slice

# Member methods that change its state: a Ray member's state is captured after each (its restart point).
MUTATING = ("start", "play_round", "load_exploit", "load_state_dict")


def mix_seed(*values: int) -> int:
    """A seed from several integers (run seed, stream, round, member) that no other combination shares."""
    return int(np.random.SeedSequence([v % 2**32 for v in values]).generate_state(1)[0])


def augment_seed(run_seed: int, member: int) -> int:
    """The seed of ``member``'s live augmentation stream in a run (``Member.start``)."""
    return mix_seed(run_seed, 1, member)


def round_seeds(config: EnvConfig, run_seed: int, round_: int, member: int) -> tuple[int, int, int | None]:
    """``play_round``'s seeds for ``member`` in round ``round_`` of a run: the batch indices' (shared by every
    member), dropout's (the member's own, or with ``config.common_draws`` the round's) and the augmentation and
    REINFORCE draws' (None: the member's live streams; with ``common_draws``, the round's)."""
    if not config.common_draws:
        return mix_seed(run_seed, 2, round_), mix_seed(run_seed, 3, round_, member), None
    return mix_seed(run_seed, 2, round_), mix_seed(run_seed, 3, round_), mix_seed(run_seed, 4, round_)


class SeededDraws:
    """``policy`` with its generator reseeded before every batch from ``seed`` and the batch's index in the round.

    Members that share ``seed`` draw the same uniforms, signs, noise and boxes at every step whatever their
    levels (a branch one member's levels skip cannot shift the others' later draws), so the difference
    between two members' rounds comes from their levels, not from their luck.
    """

    def __init__(self, policy: Policy, seed: int):
        self.policy, self.seed, self.calls = policy, seed, 0

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, *,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if generator is None:
            raise ValueError("SeededDraws needs the trainer's generator to reseed")
        generator.manual_seed(mix_seed(self.seed, 0, self.calls))
        self.calls += 1
        return self.policy(images, labels, generator=generator)

    def __repr__(self) -> str:
        return f"SeededDraws({self.policy!r}, seed={self.seed})"


class Member:
    """One population member: an ``InnerTrainer`` at the env config's start, and what a round asks of it.

    ``threads`` sets torch's intra-op threads (a Ray actor's CPU share); ``data`` shares another member's
    splits in-process.
    """

    def __init__(self, config: EnvConfig, *, data: dict[str, FaceParsingSet] | None = None,
                 trainer: InnerTrainer | None = None, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.config = config
        self.trainer = trainer or build_trainer(config, data=data)
        self.reward_fn = get_reward(config.reward, **config.reward_kw)
        val = self.trainer.data["val"]
        self.sets = {"reward": val_slice(val, 0, config.val_subset),
                     "selection": val_slice(val, config.val_subset, None)}

    def start(self, state: dict[str, Any], augment_seed: int) -> None:
        """Back to a run's start state, with this member's augmentation stream."""
        with isolated_rng(self.trainer.device):
            self.trainer.load_state_dict(state)
        self.trainer.augment_generator.manual_seed(augment_seed)

    def play_round(self, policy: Policy, mode: str, sample_seed: int, dropout_seed: int,
                   draw_seed: int | None = None) -> dict[str, Any]:
        """Train one round with ``policy`` and sampling ``mode``, then score the reward subset. With a ``draw_seed``
        (``round_seeds``), augmentation and REINFORCE draws come from it instead of the member's live streams.

        Returns ``{"stats": train_round's, "scores": evaluate's, "error": message or None}``; a round whose
        loss became non-finite keeps the member's finite updates and reports the error.
        """
        trainer = self.trainer
        trainer.sampler.set_coefficients(SAMPLING_MODES[mode])
        # Common random numbers: the round's batch indices are the same for every member of a mode.
        trainer.sample_generator.manual_seed(sample_seed)
        augment = policy
        if draw_seed is not None:
            augment = SeededDraws(policy, draw_seed)
            trainer.reinforce_generator.manual_seed(mix_seed(draw_seed, 1))
        error = None
        try:
            with isolated_rng(trainer.device):
                torch.manual_seed(dropout_seed)
                stats = trainer.train_round(augment, steps=self.config.steps_per_round)
        except NonFiniteLossError as e:
            stats, error = {"loss": math.nan, "reward": math.nan, "lr": math.nan}, str(e)
        stats["inner_step"] = trainer.step
        return {"stats": stats, "scores": self.score("reward"), "error": error}

    def score(self, which: str) -> dict[str, Any]:
        """``evaluate`` on the ``"reward"`` or ``"selection"`` subset of val with the env reward."""
        with isolated_rng(self.trainer.device):
            return self.trainer.evaluate(self.sets[which], reward_fn=self.reward_fn)

    def evaluate(self, split: str | FaceParsingSet) -> dict[str, Any]:
        """``evaluate`` on a split (the trainer's own reward)."""
        with isolated_rng(self.trainer.device):
            return self.trainer.evaluate(split)

    def exploit_state(self) -> dict[str, Any]:
        """What a losing member takes from this one: model, optimiser and sampler state (not its RNGs). Live
        tensors: ``load_exploit`` copies what it keeps."""
        return self.trainer.weights_state()

    def load_exploit(self, state: dict[str, Any]) -> None:
        self.trainer.load_weights(state)

    def state_dict(self) -> dict[str, Any]:
        return self.trainer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with isolated_rng(self.trainer.device):
            self.trainer.load_state_dict(state)


class InProcess:
    """Every member in this process, run one after another. ``trainers`` are the members' live trainers."""

    name = "inprocess"

    def __init__(self, config: EnvConfig, lead: Member, size: int):
        data = lead.trainer.data
        self.members = [lead] + [Member(config, data=data) for _ in range(size - 1)]

    @property
    def trainers(self) -> list[InnerTrainer]:
        return [m.trainer for m in self.members]

    def call(self, method: str, args: Sequence[tuple] | None = None, members: Sequence[int] | None = None) -> list:
        """``method(*args[k])`` on each member in ``members`` (default: all; ``args`` default: none each)."""
        members = range(len(self.members)) if members is None else members
        args = args or [()] * len(members)
        return [getattr(self.members[i], method)(*a) for i, a in zip(members, args, strict=True)]

    def copy_member(self, loser: int, winner: int) -> None:
        self.members[loser].load_exploit(self.members[winner].exploit_state())

    def close(self) -> None:
        pass


class RayMembers:
    """Each member a Ray actor; calls to several members run at the same time (see the module docstring).

    ``address``: an existing cluster (``"auto"`` or ``"ray://host:port"``); ``None`` starts a local Ray,
    or uses the one this process already joined. ``num_cpus`` per member also sets its torch threads.
    """

    name = "ray"

    def __init__(self, config: EnvConfig, size: int, *, address: str | None = None, num_cpus: float = 1,
                 num_gpus: float = 0):
        try:
            import ray
        except ImportError:  # pragma: no cover - ray is a dependency; a broken install still gets one line
            raise UserError("the ray backend needs Ray: pip install 'ray[tune]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        cpus = ray.cluster_resources().get("CPU", 0)
        if size * num_cpus > cpus:  # the actors would wait for CPUs forever
            raise UserError(f"the population needs {size} x {num_cpus:g} CPUs for its members; the Ray cluster has "
                            f"{cpus:g} (lower num_cpus per member, e.g. --member-cpus {cpus / size:g})")
        self.config = config
        self.actor_class = ray.remote(Member).options(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)
        self.threads = max(1, int(num_cpus))
        self.actors = [self._new_actor() for _ in range(size)]
        self.states: list[dict[str, Any] | None] = [None] * size  # each member's state after its last change
        self.restarts = [0] * size

    def _new_actor(self):
        return self.actor_class.remote(self.config, threads=self.threads)

    def call(self, method: str, args: Sequence[tuple] | None = None, members: Sequence[int] | None = None) -> list:
        """As ``InProcess.call``, the members in parallel; a dead member is restarted and its call replayed."""
        members = list(range(len(self.actors))) if members is None else list(members)
        args = list(args or [()] * len(members))
        mutating = method in MUTATING
        refs = [self._submit(i, method, a, mutating) for i, a in zip(members, args, strict=True)]
        results = []
        for i, a, ref in zip(members, args, refs, strict=True):
            try:
                out = self.ray.get(ref)
            except self.ray.exceptions.RayActorError:
                self._restart(i)
                out = self.ray.get(self._submit(i, method, a, mutating))
            if mutating:
                out, self.states[i] = out
            results.append(out)
        return results

    def _submit(self, i: int, method: str, args: tuple, mutating: bool):
        actor = self.actors[i]
        if mutating:  # the new state comes back with the result, in one task: a restart point exactly there
            return actor.__ray_call__.remote(_call_and_capture, method, *args)
        return getattr(actor, method).remote(*args)

    def _restart(self, i: int) -> None:
        """A fresh actor for member ``i`` at its last captured state (the start of the call it died in)."""
        self.restarts[i] += 1
        self.actors[i] = self._new_actor()
        if self.states[i] is not None:
            self.ray.get(self.actors[i].load_state_dict.remote(self.states[i]))

    def copy_member(self, loser: int, winner: int) -> None:
        # The winner's state goes from actor to actor through the object store, not through this process.
        state = self.actors[winner].exploit_state.remote()
        try:
            self.ray.wait([state])
            self.call("load_exploit", [(state,)], members=[loser])
        except self.ray.exceptions.RayActorError:  # the winner died: restart it, then copy again
            self._restart(winner)
            self.copy_member(loser, winner)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


def _call_and_capture(member: Member, method: str, *args: Any) -> tuple[Any, dict[str, Any]]:
    """Run on a Ray actor: the call's result and the member's state right after it."""
    return getattr(member, method)(*args), member.state_dict()


def make_members(backend: str, config: EnvConfig, lead: Member, size: int, **options: Any):
    """The members of a population: ``"inprocess"`` (``lead``, this process's member, is member 0) or ``"ray"``
    (``options``: address, num_cpus, num_gpus per member)."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend == "inprocess":
        return InProcess(config, lead, size)
    return RayMembers(config, size, **options)

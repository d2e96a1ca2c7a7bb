"""``pbt_tune``: the non-learning PBA baseline run by Ray Tune's ``PopulationBasedTraining``.

The established engine cross-checks the in-house ``pbt`` (``agents.population.PBTAgent``): the same
population size, rounds, steps per round, warm-up and per-round batches, the same prior draw of the
members' first levels, exploit every ``exploit_every`` rounds with the same quantile, and explore by
resampling a level (probability 0.2) or moving it to a neighbouring level. One ``Trainable.step`` is
one round of one member (``envs.members.Member.play_round``); checkpoints go through Tune. What
differs by design: Tune's exploit restores the donor's whole checkpoint (its RNG streams too), and
Tune's synchronous PBT perturbs on its own schedule of trial results.

The final model is, as everywhere, the member best on the selection subset of val; test is scored
once.
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np
import torch

from adaptive_de.augment import MAX_LEVEL, OPS, LevelPolicy
from adaptive_de.presets import EnvConfig
from agents.population import comparison_row, sample_prior
from envs.face_parsing import LEVEL_P, SAMPLING_MODES
from envs.members import Member, augment_seed, round_seeds

MODES = list(SAMPLING_MODES)
CHECKPOINT = "member.pt"
KEYS = (*OPS, "mode")


def _trainable():
    from ray import tune

    class MemberTrainable(tune.Trainable):
        """One population member as a Tune trial: a step trains one round and reports the reward subset's value."""

        def setup(self, config: dict[str, Any]) -> None:
            self.env_config = EnvConfig(**config["env"])
            self.run_seed, self.member_index = config["run_seed"], config["member"]
            self.member = Member(self.env_config, threads=1)  # at the run's start: the warm-up, a fresh optimiser
            self.member.trainer.augment_generator.manual_seed(augment_seed(self.run_seed, self.member_index))
            self.action = [int(config[k]) for k in KEYS]
            self.history: list[dict[str, Any]] = []  # the levels of every round behind this member's model

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            self.action = [int(new_config[k]) for k in KEYS]
            return True

        def step(self) -> dict[str, Any]:
            round_ = self.iteration + 1
            policy = LevelPolicy(self.action[:len(OPS)], p=LEVEL_P, scheme=self.member.trainer.scheme)
            result = self.member.play_round(policy, MODES[self.action[-1]],
                                            *round_seeds(self.env_config, self.run_seed, round_, self.member_index))
            self.history.append({"levels": self.action[:len(OPS)], "sampler": MODES[self.action[-1]]})
            return {"value": result["scores"]["reward"]}

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            # an exploited trial takes its donor's lineage with its weights
            torch.save({"member": self.member.state_dict(), "history": self.history},
                       os.path.join(checkpoint_dir, CHECKPOINT))

        def load_checkpoint(self, checkpoint_dir: str) -> None:
            saved = read_checkpoint(checkpoint_dir)
            self.member.load_state_dict(saved["member"])
            self.history = saved["history"]

    return MemberTrainable


def run_pbt_tune(config: EnvConfig, test, *, seed: int, cpus_per_member: float | None = None) -> dict[str, Any]:
    """A whole ``pbt_tune`` population run on a local (or already joined) Ray; the comparison row of
    ``agents.population.play_method`` (``schedule`` holds each round's levels per trial)."""
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    start = time.perf_counter()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    n = config.members
    cpus = cpus_per_member or ray.cluster_resources().get("CPU", 1) / n
    rng = np.random.default_rng(seed)  # the prior draws PBTAgent starts its members from
    initial = [sample_prior(rng) for _ in range(n)]
    levels = list(range(MAX_LEVEL + 1))
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", metric="value", mode="max", perturbation_interval=config.exploit_every,
        quantile_fraction=config.exploit_fraction, resample_probability=0.2, synch=True,
        hyperparam_mutations={**{op: levels for op in OPS}, "mode": list(range(len(MODES)))})
    space = {"env": config.to_dict(), "run_seed": seed, "member": tune.grid_search(list(range(n))),
             **{k: tune.sample_from(lambda config, j=j: int(initial[config["member"]][j])) for j, k in enumerate(KEYS)}}
    with tempfile.TemporaryDirectory() as storage:
        tuner = tune.Tuner(
            tune.with_resources(_trainable(), {"cpu": cpus}), param_space=space,
            tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=1, reuse_actors=True),
            run_config=tune.RunConfig(name="pbt_tune", storage_path=storage, verbose=0,
                                      stop={"training_iteration": config.rounds},
                                      checkpoint_config=tune.CheckpointConfig(
                                          checkpoint_frequency=config.exploit_every, checkpoint_at_end=True)))
        saved = []
        for result in tuner.fit():
            with result.checkpoint.as_directory() as folder:
                saved.append(read_checkpoint(folder))
    # every final member scored on the selection subset by one trainer in this process
    judge = Member(config)
    selection = []
    for member in saved:
        judge.load_state_dict(member["member"])
        selection.append(judge.score("selection")["reward"])
    best = int(np.argmax(selection))
    judge.load_state_dict(saved[best]["member"])
    lineages = [member["history"] for member in saved]
    return comparison_row(
        judge.evaluate(test), wall_seconds=time.perf_counter() - start, compute_inner_steps=n * config.episode_steps,
        best_member=best, selection_reward=selection,
        # per round, each final member's levels and sampling mode along its lineage (play_method's layout)
        schedule=[{"levels": [h[r]["levels"] for h in lineages], "sampler": [h[r]["sampler"] for h in lineages]}
                  for r in range(config.rounds)])


def read_checkpoint(folder: str) -> dict[str, Any]:
    return torch.load(os.path.join(folder, CHECKPOINT), weights_only=True)

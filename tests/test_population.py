"""The population VecEnv: common batches, group-relative rewards, exploit, selection, equal compute, exact state."""
import copy

import numpy as np
import pytest
import torch

from adaptive_de.augment import OPS, LevelPolicy
from adaptive_de.data import FaceParsingSet
from adaptive_de.data.sampling import MixtureSampler
from adaptive_de.errors import UserError
from adaptive_de.metrics import parsing_scores
from adaptive_de.trainer import InnerTrainer
from envs import PopulationEnv
from envs.members import SeededDraws

SMOKE = {"preset": "smoke", "members": 3, "rounds": 4, "exploit_every": 2, "exploit_fraction": 0.34}


@pytest.fixture(scope="module")
def env():
    return PopulationEnv(**SMOKE)


def actions(env, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(env.action_space.nvec, size=(env.num_envs, len(env.action_space.nvec)))


def test_spaces_sizes_and_equal_compute(env):
    obs = env.reset()
    assert env.num_envs == 3 and obs.shape == (3, *env.observation_space.shape) and obs.dtype == np.float32
    assert np.all(obs == obs[0])  # every member starts from the same warm-up, with no action yet
    assert env.compute_inner_steps == 3 * 4 * 4 == env.num_envs * env.member_steps
    for _ in range(env.rounds):
        env.step(actions(env))
    assert [t.step for t in env.trainers] == [env.member_steps] * 3  # every member trained every round


def test_members_of_a_round_draw_the_same_batches(env, monkeypatch):
    drawn = []
    original = MixtureSampler.draw

    def record(self, n, generator=None):
        idx = original(self, n, generator)
        drawn.append(idx.clone())
        return idx

    monkeypatch.setattr(MixtureSampler, "draw", record)
    env.reset()
    a = actions(env)
    a[:, -1] = 0  # one sampling mode: uniform
    env.step(a)
    per_member = torch.stack(drawn).view(env.num_envs, env.config.steps_per_round, -1)
    assert torch.equal(per_member[0], per_member[1]) and torch.equal(per_member[0], per_member[2])
    drawn.clear()
    env.step(a)
    second = torch.stack(drawn).view(env.num_envs, env.config.steps_per_round, -1)
    assert not torch.equal(second[0], per_member[0])  # a new round draws new batches


def test_rewards_are_group_relative_gains(env):
    env.reset()
    before = np.array(env._values)
    _, rewards, dones, infos = env.step(actions(env))
    gains = np.array([info["val_reward"] for info in infos]) - before
    np.testing.assert_allclose(rewards, 100 * (gains - gains.mean()), atol=1e-4)
    assert abs(rewards.sum()) < 1e-3 and not dones.any()
    assert all(info["exploited_from"] is None for info in infos)  # round 1 of exploit_every=2


def test_exploit_copies_the_best_members_weights_to_the_worst(env):
    env.reset()
    env.step(actions(env, 1))
    _, _, _, infos = env.step(actions(env, 2))
    donors = [info["exploited_from"] for info in infos]
    losers = [i for i, d in enumerate(donors) if d is not None]
    assert len(losers) == 1  # a third of 3 members
    loser, winner = losers[0], donors[losers[0]]
    values = env._values
    assert values[winner] == max(values) and values[loser] == values[winner]
    for key, value in env.trainers[winner].model.state_dict().items():
        assert torch.equal(value, env.trainers[loser].model.state_dict()[key])
    assert infos[loser]["val_reward"] == infos[winner]["val_reward"]
    moments = [{id(p): s["exp_avg"] for p, s in env.trainers[i].optimizer.state.items()} for i in (loser, winner)]
    assert all(torch.equal(a, b) for a, b in zip(moments[0].values(), moments[1].values(), strict=True))
    pointers = [{t.data_ptr() for t in m.values()} for m in moments]
    assert not pointers[0] & pointers[1]  # copied, not shared: each member updates its own Adam moments
    # members keep their own augmentation streams
    streams = [env.trainers[i].augment_generator.get_state() for i in (loser, winner)]
    assert not torch.equal(*streams)


def test_the_final_member_is_chosen_on_a_selection_split_disjoint_from_the_reward_subset(env):
    env.reset()
    for round_ in range(env.rounds):
        obs, _, dones, infos = env.step(actions(env, round_))
    assert dones.all() and env.final is not None
    val = env.trainers[0].data["val"]
    assert len(env.reward_set) == env.config.val_subset and len(env.selection_set) == len(val) - env.config.val_subset
    assert not set(env.reward_set.names) & set(env.selection_set.names)
    assert env.final["best"] == int(np.argmax(env.final["selection"])) == infos[0]["best_member"]
    assert np.all(obs == env._start_observations())  # SB3 convention: the next run's first observation
    # an independent computation of the final member's test score
    test = FaceParsingSet(val.images[:20], val.labels[:20], val.scheme, val.names[:20])
    scores = env.evaluate_final(test)
    restored = InnerTrainer(env.trainers[0].config, data=env.trainers[0].data, splits=("train", "val"))
    restored.load_state_dict(env.final["state"])
    pred = restored.predict(test.images)
    expected = parsing_scores(pred, test.labels.long(), val.scheme.num_classes)
    assert scores["mean_f1"] == pytest.approx(float(expected["mean_f1"]), abs=1e-6)
    env.step(actions(env))  # the next run starts lazily from the start state
    assert env.final is None and [t.step for t in env.trainers] == [env.config.steps_per_round] * 3


def test_policy_override_trains_every_member_with_the_policy_object(env):
    env.set_options({"policy": "randaugment"})
    env.reset()
    _, _, _, infos = env.step(actions(env))
    assert all(info["levels"] is None for info in infos)
    env.reset()  # options last one run
    _, _, _, infos = env.step(actions(env))
    assert all(info["levels"] is not None for info in infos)


def test_state_round_trip_continues_bit_identically():
    first = PopulationEnv(**SMOKE)
    first.reset()
    first.step(actions(first, 0))
    state = copy.deepcopy(first.state_dict())  # like nn.Module.state_dict: references to live tensors
    tail = [first.step(actions(first, k))[:2] for k in (1, 2, 3)]
    second = PopulationEnv(**SMOKE)
    second.reset()
    second.load_state_dict(state)
    for (obs, rewards), k in zip(tail, (1, 2, 3), strict=True):
        again, again_rewards, *_ = second.step(actions(second, k))
        np.testing.assert_array_equal(obs, again)
        np.testing.assert_array_equal(rewards, again_rewards)
    assert first.final["selection"] == second.final["selection"]


@pytest.mark.parametrize("options, message", [
    ({"members": 1}, "at least 2 members"),
    ({"exploit_every": 5}, "exploit_every=5 must be between 1 and the run's rounds (4)"),
    ({"exploit_every": 3}, "exploit_every=3 does not divide rounds=4"),
    ({"exploit_fraction": 0.9}, "exploit_fraction must be in (0, 0.5]"),
    ({"val_subset": 50}, "none is left for selection"),
])
def test_bad_population_sizes_are_user_errors(options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        PopulationEnv(preset="smoke", **options)


def test_action_outside_the_space_is_refused(env):
    env.reset()
    bad = actions(env)
    bad[0, 0] = len(OPS)
    with pytest.raises(ValueError, match="is not in"):
        env.step(bad)


@pytest.mark.parametrize("common", [False, True])
def test_common_draws_make_two_members_with_one_action_twins(common):
    env = PopulationEnv(**{**SMOKE, "exploit_every": 4}, common_draws=common)  # no exploit: no copied twins
    env.reset()
    a = actions(env, 3)
    a[1] = a[0]  # members 0 and 1 take one action, member 2 another
    assert not np.array_equal(a[2], a[0])
    for _ in range(2):
        _, rewards, _, _ = env.step(a)
    weights = [torch.cat([p.detach().flatten() for p in t.model.parameters()]) for t in env.trainers]
    # with their own streams the twins' augmentations differ; with the round's draws nothing but the action can
    assert torch.equal(weights[0], weights[1]) == common
    assert (rewards[0] == rewards[1]) == common
    assert not torch.equal(weights[0], weights[2])


def test_seeded_draws_depend_on_the_batch_index_not_on_what_other_levels_drew():
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    labels = torch.randint(0, 11, (8, 16, 16))
    with_noise, without = LevelPolicy({"rotate": 4, "noise": 4}), LevelPolicy({"rotate": 4})

    def second_labels(policy, wrap):
        generator = torch.Generator().manual_seed(0)
        call = SeededDraws(policy, seed=7) if wrap else policy
        call(images, labels, generator=generator)  # the first batch: only with_noise draws noise windows
        return call(images, labels, generator=generator)[1]

    # a live stream: the first batch's noise draws shift the second batch's rotations
    assert not torch.equal(second_labels(with_noise, False), second_labels(without, False))
    assert torch.equal(second_labels(with_noise, True), second_labels(without, True))

"""FaceParsingAugmentEnv: both env checkers, seeded reproducibility, reward semantics, crash handling, wrappers."""
import warnings

import gymnasium
import numpy as np
import pytest
import torch

import envs
from adaptive_de.augment import OPS
from adaptive_de.errors import UserError
from envs import ENV_ID, MENU, SAMPLING_MODES, FaceParsingAugmentEnv, MenuActionWrapper

ACTIONS = [np.array([2] * len(OPS) + [0]), np.array([0, 4, 1, 3] * 4 + [3]), np.array([1] * len(OPS) + [1]),
           np.array([3] * len(OPS) + [2])]  # one per round of the smoke preset


@pytest.fixture(scope="module")
def env():
    return FaceParsingAugmentEnv(preset="smoke", render_mode="rgb_array")


def rollout(env, seed, actions=ACTIONS):
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, *_ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
    return np.stack(observations), np.array(rewards)


def test_registered_env_passes_both_checkers():
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gymnasium.make(ENV_ID, preset="smoke", render_mode="rgb_array")
    assert env.unwrapped.rounds == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker warning is a failure too
        gym_check_env(env.unwrapped)
        sb3_check_env(env)


def test_spaces_and_observation_layout(env):
    c = env.scheme.num_classes
    assert env.action_space.nvec.tolist() == [5] * len(OPS) + [len(SAMPLING_MODES)]
    assert env.observation_space.shape == (4 + c + len(OPS) + 1,)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert obs[0] == 0 and obs[1] == 0.5 and np.all(obs[4 + c:] == 0)  # no round, no loss, no action yet
    assert obs[2] == pytest.approx(info["val_mean_f1"])
    obs, _, terminated, truncated, info = env.step(ACTIONS[1])
    assert obs[0] == pytest.approx(1 / 4) and not terminated and not truncated
    assert obs[2] == pytest.approx(info["val_mean_f1"]) and obs[3] == pytest.approx(min(1, 5 * info["val_fp_rate"]))
    np.testing.assert_allclose(obs[4:4 + c], [f1 or 0.0 for f1 in info["val_f1"]], rtol=1e-6)
    np.testing.assert_allclose(obs[4 + c:-1], ACTIONS[1][:-1] / 4)
    assert obs[-1] == 1.0  # mode 3 of 0..3
    assert info["levels"] == ACTIONS[1][:-1].tolist() and info["sampler"] == "mixed"
    for key in ("train_loss", "train_reward", "val_reward", "val_f1", "inner_step", "policy"):
        assert key in info


def test_seeded_reset_and_steps_are_reproducible(env):
    torch_state = torch.get_rng_state()
    obs_a, rewards_a = rollout(env, seed=7)
    obs_b, rewards_b = rollout(env, seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rewards_a, rewards_b)
    _, rewards_c = rollout(env, seed=8)
    assert not np.array_equal(rewards_a, rewards_c)  # another seed draws other batches and augmentations
    assert torch.equal(torch.get_rng_state(), torch_state)  # the env leaves the caller's RNG alone


def test_episodes_restart_from_the_start_model(env):
    _, first = env.reset(seed=1)
    rollout(env, seed=None)
    _, again = env.reset(seed=2)
    assert again["val_reward"] == first["val_reward"] and env.trainer.step == 0
    assert again["episode_seed"] != first["episode_seed"]


def test_delta_reward_is_the_change_of_the_evaluated_reward(env):
    _, info = env.reset(seed=3)
    subset = env.config.val_subset
    before = env.trainer.evaluate("val", limit=subset)["reward"]  # the trainer's reward_fn is the env reward here
    assert info["val_reward"] == pytest.approx(before, abs=1e-9)
    for round_index, action in enumerate(ACTIONS, 1):
        _, reward, terminated, _, info = env.step(action)
        after = env.trainer.evaluate("val", limit=subset)
        assert reward == pytest.approx(after["reward"] - before, abs=1e-9)
        assert info["val_mean_f1"] == pytest.approx(after["mean_f1"]) and info["round"] == round_index
        before = after["reward"]
    assert terminated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(ACTIONS[0])


@pytest.mark.parametrize("mode", ["absolute", "final"])
def test_absolute_and_final_reward_modes(mode):
    env = FaceParsingAugmentEnv(preset="smoke", reward_mode=mode)
    env.reset(seed=0)
    steps = [env.step(a) for a in ACTIONS]
    rewards, values = [s[1] for s in steps], [s[4]["val_reward"] for s in steps]
    expected = values if mode == "absolute" else [0.0] * (len(values) - 1) + [values[-1]]
    assert rewards == pytest.approx(expected)


def test_separate_env_and_inner_rewards():
    env = FaceParsingAugmentEnv(preset="smoke", reward="mean_f1", inner_reward="f1_fp", inner_reward_kw={"w": 0.5},
                                ce_weight=0.25)
    _, info = env.reset(seed=0)
    assert env.trainer.config.ce_weight == 0.25  # the tuning loss's CE share reaches the trainer
    assert env.trainer.reward_fn.__name__ == "f1_fp(w=0.5)" and env.reward_fn.__name__ == "mean_f1"
    assert env.trainer.config.loss == "ce_then_reinforce" and env.trainer.phase(0) == "reinforce"  # pretrained: tuning
    assert env.trainer.lr_at(5) <= env.config.lr * env.config.tune_lr_factor


def test_non_finite_loss_ends_the_episode_with_a_penalty(monkeypatch):
    env = FaceParsingAugmentEnv(preset="smoke")
    env.reset(seed=0)
    monkeypatch.setattr(env.trainer, "_forward", lambda x: env.trainer.model(x) * float("nan"))
    obs, reward, terminated, truncated, info = env.step(ACTIONS[0])
    assert (reward, terminated, truncated, info["nonfinite"]) == (-1.0, True, False, True)
    assert "non-finite" in info["error"] and env.observation_space.contains(obs)
    with pytest.raises(RuntimeError):
        env.step(ACTIONS[0])


def test_absent_classes_keep_infos_comparable(env, monkeypatch):
    from gymnasium.utils.env_checker import check_step_determinism

    score = env._score_val

    def with_an_absent_class():
        scores = score()
        scores["f1"][3] = float("nan")  # e.g. a rare CelebAMask-HQ class missing from the val subset
        return scores

    monkeypatch.setattr(env, "_score_val", with_an_absent_class)
    obs, info = env.reset(seed=0)
    assert info["val_f1"][3] is None and obs[4 + 3] == 0.0
    check_step_determinism(env)  # NaN != NaN would fail it


def test_policy_override_lasts_one_episode(env):
    env.reset(seed=0, options={"policy": "randaugment"})
    _, _, _, _, info = env.step(ACTIONS[0])
    assert info["policy"].startswith("RandAugment") and info["levels"] is None
    env.reset(seed=0)
    _, _, _, _, info = env.step(ACTIONS[0])
    assert info["policy"].startswith("LevelPolicy") and info["levels"] == ACTIONS[0][:-1].tolist()
    with pytest.raises(ValueError, match="policy"):
        env.reset(options={"polcy": "none"})


def test_render_frames_and_test_split():
    env = FaceParsingAugmentEnv(preset="smoke", render_mode="rgb_array", frames_in_info=True, timing_info=True)
    env.reset(seed=0)
    picture = env.render()
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    for action in ACTIONS:
        *_, terminated, _, info = env.step(action)
    assert terminated and info["images_per_s"] > 0
    for frame in info["frames"].values():
        assert frame.dtype == torch.uint8 and frame.shape[0] == 3
    test = env.evaluate("test")
    assert 0 <= test["mean_f1"] <= 1 and len(test["f1"]) == env.scheme.num_classes


def test_menu_wrapper_maps_names_to_actions(env):
    menu_env = MenuActionWrapper(env)
    assert menu_env.action_space == gymnasium.spaces.Discrete(len(MENU))
    assert menu_env.action(0).tolist() == [0] * (len(OPS) + 1)
    all_at_2 = menu_env.action(menu_env.names.index("all@2"))
    assert all_at_2.tolist() == [2] * len(OPS) + [0]
    assert all(env.action_space.contains(menu_env.action(i)) for i in range(len(MENU)))


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="cpu, gpu, paper, smoke"):
        FaceParsingAugmentEnv(preset="huge")
    with pytest.raises(UserError, match="rounds_per_episode"):
        FaceParsingAugmentEnv(preset="smoke", rounds_per_episode=3)
    with pytest.raises(UserError, match="ce_then_reinforce"):
        FaceParsingAugmentEnv(preset="smoke", inner_loss="mse")
    with pytest.raises(UserError, match="unknown reward"):
        FaceParsingAugmentEnv(preset="smoke", reward="nope")
    assert envs.ENV_ID in gymnasium.registry


def test_the_trainer_config_is_derived_from_the_env_config_in_one_place():
    from adaptive_de.config import TrainConfig
    from adaptive_de.presets import EnvConfig

    env = EnvConfig.from_preset("smoke", inner_reward="mean_f1", seed=7)
    train = env.train_config()
    assert (train.model, train.data, train.batch_size, train.seed) == (env.model, env.data, 8, 7)
    assert train.steps == env.rounds * env.steps_per_round and train.reward == "mean_f1" and train.tune_from == 0
    assert EnvConfig(cuda_graph=False).train_config().cuda_graph is False
    with pytest.raises(UserError, match="cuda_graph must be bool or None"):
        EnvConfig(cuda_graph="no")
    assert EnvConfig(start="scratch").train_config().tune_from == TrainConfig.tune_from
    shared = ("data", "batch_size", "lr", "num_samples", "eval_batch_size", "device", "cuda_graph", "seed")
    assert all(getattr(EnvConfig(), f) == getattr(TrainConfig(), f) for f in shared)  # one set of defaults
    assert (EnvConfig().model, EnvConfig().tune_lr_factor) == (TrainConfig().model, 1.0)  # the env tunes at full lr

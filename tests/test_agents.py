"""Agents: the registry, baselines acting through the env, SB3 learners' learn/save/load with weights-only files."""
import pickle

import numpy as np
import pytest
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from adaptive_de.augment import OPS
from adaptive_de.errors import UserError
from agents import AGENTS, agent_class, make_agent
from agents.evaluation import run_episode
from envs import FaceParsingAugmentEnv, MenuActionWrapper

FIXED = ",".join(["2"] * 5 + ["4"] + ["0"] * 10) + ",class_balanced"


@pytest.fixture(scope="module")
def env():
    return FaceParsingAugmentEnv(preset="smoke")


def test_registry_and_specs():
    assert {"ppo", "a2c", "dqn", "random", "none", "randaugment", "trivialaugment", "fixed"} <= set(AGENTS)
    assert agent_class("ppo")[0].learns and agent_class("dqn")[0].menu_actions
    assert agent_class("ppo_menu")[0].menu_actions and not agent_class("ppo")[0].menu_actions
    assert agent_class(f"fixed:{FIXED}") == (AGENTS["fixed"], FIXED)
    for bad in ("sac", "fixed", "ppo:3"):
        with pytest.raises(UserError, match="choose one of: ppo, a2c, dqn"):
            agent_class(bad)


def test_baselines_act_in_the_action_space(env):
    obs, _ = env.reset(seed=0)
    assert make_agent("none", env).predict(obs)[0].tolist() == [0] * (len(OPS) + 1)
    fixed = make_agent(f"fixed:{FIXED}", env).predict(obs)[0]
    assert fixed.tolist() == [2] * 5 + [4] + [0] * 10 + [1]
    first, second = make_agent("random", env, seed=3), make_agent("random", env, seed=3)
    actions = [first.predict(obs)[0] for _ in range(3)]
    assert all(env.action_space.contains(a) for a in actions)
    assert all(np.array_equal(a, second.predict(obs)[0]) for a in actions)  # seeded
    batch = make_agent("none", env).predict(np.stack([obs, obs]))[0]
    assert batch.shape == (2, len(OPS) + 1)
    assert make_agent("trivialaugment", env).episode_options == {"policy": "trivialaugment"}


@pytest.mark.parametrize("spec", ["fixed:1,2", f"fixed:{FIXED[:-3]}xyz", "fixed:" + ",".join(["5"] * len(OPS))])
def test_malformed_fixed_agent_is_a_user_error(env, spec):
    with pytest.raises(UserError, match="bad fixed agent"):
        make_agent(spec, env)


def test_policy_override_baseline_runs_a_full_episode(env):
    episode = run_episode(make_agent("randaugment", env), env, seed=0)
    assert len(episode.infos) == env.rounds + 1 and len(episode.rewards) == env.rounds
    assert all(info["policy"].startswith("RandAugment") for info in episode.infos[1:])
    assert episode.episode_return == pytest.approx(episode.infos[-1]["val_reward"] - episode.infos[0]["val_reward"])


@pytest.mark.parametrize("name, timesteps", [("ppo", 6), ("a2c", 3), ("dqn", 8), ("ppo_menu", 6)])
def test_learner_learns_saves_and_loads(env, tmp_path, name, timesteps):
    cls = AGENTS[name]
    acting = MenuActionWrapper(env) if cls.menu_actions else env

    def venv():
        return DummyVecEnv([lambda: Monitor(acting)])

    agent = make_agent(name, venv(), seed=0, **({"learning_starts": 3} if name == "dqn" else {}))
    agent.learn(timesteps)
    assert agent.num_timesteps == timesteps
    agent.save(tmp_path / "agent.pt")
    state = torch.load(tmp_path / "agent.pt", weights_only=True)
    assert state["agent"] == name and state["num_timesteps"] == timesteps

    restored = make_agent(name, venv(), seed=1)
    restored.load(tmp_path / "agent.pt")
    assert restored.num_timesteps == timesteps
    obs, _ = env.reset(seed=0)
    assert np.array_equal(agent.predict(obs, deterministic=True)[0], restored.predict(obs, deterministic=True)[0])
    np.testing.assert_array_equal(agent.normaliser.obs_rms.mean, restored.normaliser.obs_rms.mean)
    for key, value in agent.model.policy.state_dict().items():
        assert torch.equal(value, restored.model.policy.state_dict()[key])


def test_learner_refuses_foreign_files(env, tmp_path):
    agent = make_agent("ppo", DummyVecEnv([lambda: Monitor(env)]))
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Exception("not weights"), protocol=2))
    with pytest.raises(UserError, match="cannot load checkpoint"):
        agent.load(tmp_path / "evil.pt")
    make_agent("a2c", DummyVecEnv([lambda: Monitor(env)])).save(tmp_path / "a2c.pt")
    with pytest.raises(UserError, match="'a2c', not 'ppo'"):
        agent.load(tmp_path / "a2c.pt")
    with pytest.raises(UserError, match="unknown ppo option"):
        make_agent("ppo", DummyVecEnv([lambda: Monitor(env)]), n_stepz=4)

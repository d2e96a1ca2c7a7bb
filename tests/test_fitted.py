"""Experience across runs: probe's random design, the op-effect fit and the recipe fitted trains from it."""
import json

import numpy as np
import pytest
import torch

from adaptive_de.augment import MAX_LEVEL, OPS
from adaptive_de.data import load
from adaptive_de.errors import UserError
from agents import make_agent, run_population
from agents.fitted import (
    BASE_OFFSET,
    EDIT_Z,
    fitted_levels,
    fitted_menu,
    fitted_prior_logits,
    op_effects,
    probe_samples,
)
from agents.population import PRIOR_MODE, STRENGTHS, play_method, strength_levels
from agents.sb3 import PPOFittedBanditAgent, PPOFittedOftenAgent
from envs import PopulationEnv
from envs.face_parsing import SAMPLING_MODES
from tests.conftest import PROBE_ROUNDS as ROUNDS
from tests.conftest import probe_runs, write_probe_study

NOISE, SHEAR = OPS.index("noise"), OPS.index("shear")


@pytest.fixture(scope="module")
def env():
    return PopulationEnv(preset="smoke", members=3)


def test_the_fit_equals_a_regression_with_one_dummy_per_round():
    levels, rewards, groups = probe_samples(probe_runs(np.linspace(-0.2, 0.2, len(OPS)), runs=3, sigma=1.0))
    fit = op_effects(levels, rewards, groups)
    dummies = (groups[:, None] == np.unique(groups)[None]).astype(float)  # the intercepts, estimated outright
    design = np.hstack([levels, dummies])
    coef, *_ = np.linalg.lstsq(design, rewards, rcond=None)
    residual = rewards - design @ coef
    covariance = residual @ residual / (len(rewards) - design.shape[1]) * np.linalg.inv(design.T @ design)
    np.testing.assert_allclose(fit["effect"], coef[:len(OPS)], atol=1e-10)
    np.testing.assert_allclose(fit["se"], np.sqrt(np.diag(covariance))[:len(OPS)], rtol=1e-8)


def test_the_weighted_fit_equals_weighted_least_squares_with_one_dummy_per_round():
    sigma = np.linspace(3.0, 0.2, ROUNDS)  # the probe runs' spread falls over the run
    levels, rewards, groups = probe_samples(probe_runs(np.linspace(-0.2, 0.2, len(OPS)), runs=3, sigma=sigma))
    weights = (1 / sigma**2)[groups % ROUNDS]
    fit = op_effects(levels, rewards, groups, weights=weights)
    dummies = (groups[:, None] == np.unique(groups)[None]).astype(float)
    root = np.sqrt(weights)[:, None]
    design = np.hstack([levels, dummies]) * root
    coef, *_ = np.linalg.lstsq(design, rewards * root[:, 0], rcond=None)
    residual = rewards * root[:, 0] - design @ coef
    covariance = residual @ residual / (len(rewards) - design.shape[1]) * np.linalg.inv(design.T @ design)
    np.testing.assert_allclose(fit["effect"], coef[:len(OPS)], atol=1e-10)
    np.testing.assert_allclose(fit["se"], np.sqrt(np.diag(covariance))[:len(OPS)], rtol=1e-8)
    unweighted = op_effects(levels, rewards, groups)
    assert np.all(fit["se"] < unweighted["se"])  # the quiet rounds count for more, so the effects are surer
    equal = op_effects(levels, rewards, groups, weights=np.full(len(rewards), 3.0))
    np.testing.assert_allclose(equal["effect"], unweighted["effect"], atol=1e-12)
    np.testing.assert_allclose(equal["se"], unweighted["se"], rtol=1e-10)


def test_the_fit_recovers_known_effects_at_the_predicted_precision():
    effects = np.zeros(len(OPS))
    effects[NOISE], effects[SHEAR] = 0.3, -0.3
    fit = op_effects(*probe_samples(probe_runs(effects, runs=4, sigma=1.04, seed=1)))
    assert np.all(np.abs(fit["effect"] - effects) < 4 * fit["se"])
    # the plan's arithmetic: 1.04 / sqrt(256 member-rounds x 1.5 within-round level variance)
    np.testing.assert_allclose(fit["se"], 1.04 / np.sqrt(256 * 1.5), rtol=0.2)
    assert fitted_levels(**fit)["noise"] == MAX_LEVEL and fitted_levels(**fit)["shear"] == 0


def test_fitted_levels_edit_only_the_ops_whose_interval_excludes_zero():
    effect, se = np.zeros(len(OPS)), np.full(len(OPS), 0.1)
    effect[NOISE], effect[SHEAR], effect[OPS.index("rotate")] = 0.2, -0.2, 0.19  # rotate's interval holds 0
    levels, base = fitted_levels(effect, se), strength_levels(2)
    assert EDIT_Z * 0.1 < 0.2 and levels["noise"] == MAX_LEVEL and levels["shear"] == 0
    assert {op: level for op, level in levels.items() if op not in ("noise", "shear")} == {
        op: level for op, level in base.items() if op not in ("noise", "shear")}


def test_probe_draws_every_level_uniformly_with_the_priors_sampling(env):
    probe = make_agent("probe", env, seed=0)
    draws = np.concatenate([probe.predict(np.zeros((3, 1)))[0] for _ in range(1000)])  # 3000 actions
    assert np.all(draws[:, -1] == list(SAMPLING_MODES).index(PRIOR_MODE))
    frequencies = np.stack([np.bincount(draws[:, i], minlength=MAX_LEVEL + 1) for i in range(len(OPS))]) / 3000
    assert np.all(np.abs(frequencies - 0.2) < 0.035)  # 5 sd of a frequency at n = 3000
    assert abs(np.corrcoef(draws[:, NOISE], draws[:, SHEAR])[0, 1]) < 0.06  # independent ops
    again = make_agent("probe", env, seed=0)
    assert np.array_equal(again.predict(np.zeros((3, 1)))[0], draws[:3])  # seeded


def test_fitted_trains_the_fitted_recipe_and_counts_the_probe_runs_in_its_compute(env, tmp_path):
    effects = np.zeros(len(OPS))
    effects[NOISE], effects[SHEAR] = 0.5, -0.5
    runs = probe_runs(effects, runs=2, sigma=0.5)
    agent = make_agent(f"fitted:{write_probe_study(tmp_path / 'probe.json', runs, [7, 8], compute=100)}", env, seed=0)
    want = fitted_levels(**op_effects(*probe_samples(runs)))  # the null ops may hold a chance edit (5% each)
    assert want["noise"] == MAX_LEVEL and want["shear"] == 0
    assert agent.search_inner_steps == 2 * 100
    test = load(env.config.data, "test", size=env.reference.image_size)
    row = play_method(env, agent, test)
    assert all(levels == [want[op] for op in OPS] for round_ in row["schedule"] for levels in round_["levels"])
    assert row["compute_inner_steps"] == env.compute_inner_steps + 200  # its own run, and the probe runs'
    assert all(len(round_["rewards"]) == env.num_envs for round_ in row["schedule"])  # runs record the rewards
    np.testing.assert_allclose([sum(r["rewards"]) for r in row["schedule"]], 0, atol=1e-4)  # group-relative


def test_fitted_refuses_its_own_seed_foreign_files_and_too_few_samples(env, tmp_path):
    runs = probe_runs(np.zeros(len(OPS)), runs=2, sigma=1.0)
    with pytest.raises(UserError, match="seed 8, this run's own seed"):
        make_agent(f"fitted:{write_probe_study(tmp_path / 'a.json', runs, [7, 8])}", env, seed=8)
    (tmp_path / "ppo.json").write_text(json.dumps({"seeds": [1], "schedules": {"ppo": runs}}))
    for bad in (tmp_path / "missing.json", tmp_path / "ppo.json"):
        with pytest.raises(UserError, match="not a benchmarks.learning study file with probe's schedules"):
            make_agent(f"fitted:{bad}", env, seed=0)
    with pytest.raises(UserError, match="8 probe samples in 2 rounds cannot estimate 16 op effects"):
        make_agent(f"fitted:{write_probe_study(tmp_path / 'b.json', [runs[0][:2]], [7])}", env, seed=0)


def test_ppo_fitted_and_its_frozen_prior_start_at_the_fitted_recipe_and_keep_its_edits(env, tmp_path):
    effects = np.zeros(len(OPS))
    effects[NOISE], effects[SHEAR] = 0.5, -0.5
    runs = probe_runs(effects, runs=2, sigma=0.5)
    source = write_probe_study(tmp_path / "probe.json", runs, [7, 8], compute=100)
    want = fitted_levels(**op_effects(*probe_samples(runs)))
    menu = fitted_menu(want)
    assert menu[f"strength+{BASE_OFFSET}+fit"] == (want, PRIOR_MODE)  # the prior's peak is fitted's recipe
    assert all(levels["noise"] == MAX_LEVEL and levels["shear"] == 0 for levels, _ in menu.values())
    assert [levels["rotate"] for levels, _ in menu.values()] == [0, 1, 2, 3, 4]  # one magnitude, as ppo's menu
    prior = np.exp(fitted_prior_logits()[0])
    assert prior.argmax() == STRENGTHS.index(BASE_OFFSET) and prior.sum() == pytest.approx(1)

    frozen = make_agent(f"prior_fitted:{source}", env, seed=0)
    items = {tuple(levels[op] for op in OPS): i for i, (levels, _) in enumerate(menu.values())}
    draws = np.concatenate([frozen.predict(np.zeros((3, 1)))[0] for _ in range(1000)])  # 3000 actions
    counts = np.bincount([items[tuple(action[:len(OPS)])] for action in draws], minlength=len(STRENGTHS))
    assert np.all(np.abs(counts / 3000 - prior) < 0.04)  # 5 sd of the largest frequency's error at n = 3000

    learner = make_agent(f"ppo_fitted:{source}", env, seed=0)
    assert learner.search_inner_steps == frozen.search_inner_steps == 2 * 100
    obs = torch.as_tensor(env.reset(), dtype=torch.float32)
    start = learner.model.policy.get_distribution(obs).distribution.probs.detach().numpy()
    np.testing.assert_allclose(start, np.broadcast_to(prior, start.shape), rtol=1e-5)  # it starts at the prior
    test = load(env.config.data, "test", size=env.reference.image_size)
    row = play_method(env, learner, test)
    assert all(tuple(levels) in items for round_ in row["schedule"] for levels in round_["levels"])
    assert row["compute_inner_steps"] == env.compute_inner_steps + 200

    for spec in ("ppo_fitted", "prior_fitted"):
        with pytest.raises(UserError, match="seed 8, this run's own seed"):
            make_agent(f"{spec}:{source}", env, seed=8)


def fitted_learners(tmp_path, specs: tuple[str, ...], rounds: int):
    """A probe study on seeds 7 and 8, a 2-member smoke population of ``rounds`` rounds, and each of ``specs`` reading
    that study, on seed 0."""
    source = write_probe_study(tmp_path / "probe.json", probe_runs(np.zeros(len(OPS)), runs=2, sigma=0.5), [7, 8])
    env = PopulationEnv(preset="smoke", members=2, rounds=rounds, steps_per_round=1)
    return source, env, {spec: make_agent(f"{spec}:{source}", env, seed=0) for spec in specs}


def test_ppo_fitted_often_is_ppo_fitted_updated_every_two_rounds(tmp_path):
    source, twelve, agents = fitted_learners(tmp_path, ("ppo_fitted", "ppo_fitted_often"), rounds=12)
    often = agents["ppo_fitted_often"]
    assert often.name == f"ppo_fitted_often:{source}"
    assert often.search_inner_steps == agents["ppo_fitted"].search_inner_steps
    obs = torch.as_tensor(twelve.reset(), dtype=torch.float32)
    starts = [a.model.policy.get_distribution(obs).distribution.probs.detach().numpy() for a in agents.values()]
    np.testing.assert_array_equal(*starts)  # the same prior over the same menu: only the updates differ
    updates = {}
    for spec, agent in agents.items():
        run_population(agent, twelve)
        updates[spec] = agent.model._n_updates // agent.model.n_epochs
    assert updates == {"ppo_fitted": 3, "ppo_fitted_often": 6}
    assert PPOFittedOftenAgent.defaults(24, 4)["n_steps"] == 2 and PPOFittedOftenAgent.defaults(5, 4)["n_steps"] == 1


def test_ppo_fitted_bandit_is_ppo_fitted_often_with_one_distribution_whatever_it_observes(tmp_path):
    source, six, agents = fitted_learners(tmp_path, ("ppo_fitted_often", "ppo_fitted_bandit"), rounds=6)
    bandit = agents["ppo_fitted_bandit"]
    assert bandit.name == f"ppo_fitted_bandit:{source}"
    assert PPOFittedBanditAgent.defaults(24, 4) == PPOFittedOftenAgent.defaults(24, 4)  # the same updates
    observations = torch.rand(5, *six.observation_space.shape, generator=torch.Generator().manual_seed(0))
    probs = {}
    for spec, agent in agents.items():
        run_population(agent, six)
        assert agent.model._n_updates // agent.model.n_epochs == 3
        probs[spec] = agent.model.policy.get_distribution(observations).distribution.probs.detach().numpy()
    # both moved off the prior; only the often-updated one reads the observation
    prior = torch.softmax(torch.as_tensor(fitted_prior_logits()[0]), 0).numpy()
    assert all(np.abs(p - prior).max() > 1e-3 for p in probs.values())
    assert np.abs(probs["ppo_fitted_often"] - probs["ppo_fitted_often"][0]).max() > 1e-4
    np.testing.assert_array_equal(probs["ppo_fitted_bandit"], np.broadcast_to(probs["ppo_fitted_bandit"][0], (5, 5)))
    assert not bandit.model.policy.action_net.weight.any()  # held at zero, through the save and load too
    restored = make_agent(f"ppo_fitted_bandit:{source}", six, seed=1)
    restored.load_state_dict(bandit.state_dict())
    assert not restored.model.policy.action_net.weight.requires_grad
    torch.testing.assert_close(restored.model.policy.action_net.bias, bandit.model.policy.action_net.bias)

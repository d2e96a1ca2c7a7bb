"""The Ray backend: the same numbers as in-process on the CPU, and a killed member's actor restarted."""
import os

import numpy as np
import pytest
import torch

from envs import PopulationEnv

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

SMOKE = {"preset": "smoke", "members": 3, "rounds": 4, "exploit_every": 2, "exploit_fraction": 0.34}


@pytest.fixture(scope="module")
def local_ray():
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # a sandbox that cannot start Ray's processes: the backend cannot be tested here
        pytest.skip(f"cannot start a local Ray: {type(e).__name__}: {e}")
    yield
    ray.shutdown()


def play(env: PopulationEnv, kill_at: int | None = None) -> tuple[list, dict]:
    """A whole run with fixed actions; the per-round rewards and infos, and the final selection."""
    rng = np.random.default_rng(0)
    env.reset()
    rewards = []
    for r in range(env.rounds):
        if r == kill_at:
            victim = env.members.actors[1]
            pid = ray.get(victim.__ray_call__.remote(lambda member: os.getpid()))
            os.kill(pid, 9)  # the member dies between rounds, its next call finds it gone
        a = rng.integers(env.action_space.nvec, size=(env.num_envs, len(env.action_space.nvec)))
        _, reward, _, infos = env.step(a)
        rewards.append((reward.tolist(), [i["val_mean_f1"] for i in infos], [i["exploited_from"] for i in infos]))
    return rewards, {"best": env.final["best"], "selection": env.final["selection"]}


def test_ray_backend_matches_in_process_and_survives_a_killed_member(local_ray):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a Ray member with up to 1 CPU trains with 1 torch thread: the same kernels
    try:
        local = PopulationEnv(**SMOKE)
        expected = play(local)
        test_scores = local.evaluate_final("val")
    finally:
        torch.set_num_threads(threads)
    remote = PopulationEnv(**SMOKE, backend="ray", backend_options={"num_cpus": 0.5})  # 3 members on 2 CPUs
    try:
        assert play(remote) == expected
        assert remote.evaluate_final("val") == test_scores
        assert play(remote, kill_at=2) == expected  # the killed member was restarted and its round replayed
        assert remote.members.restarts == [0, 1, 0]
        with pytest.raises(AttributeError, match="actors"):
            remote.trainers  # noqa: B018
    finally:
        remote.close()


def test_pbt_tune_runs_the_population_on_ray_tune(local_ray):
    from adaptive_de.augment import OPS
    from adaptive_de.data import load
    from adaptive_de.presets import EnvConfig
    from agents.pbt_tune import run_pbt_tune
    from agents.population import sample_prior
    from envs.face_parsing import build_trainer

    config = EnvConfig.from_preset(**{**SMOKE, "seed": 3})
    test = load(config.data, "test", size=build_trainer(config).image_size)
    row = run_pbt_tune(config, test, seed=3)
    assert row["compute_inner_steps"] == 3 * 4 * 4  # members x rounds x steps, as the in-house pbt
    assert len(row["schedule"]) == 4 and all(len(r["levels"]) == 3 for r in row["schedule"])
    rng = np.random.default_rng(3)
    first = [sample_prior(rng)[:len(OPS)].tolist() for _ in range(3)]
    # every lineage starts from one of PBTAgent's prior draws (an exploited member carries its donor's)
    assert all(levels in first for levels in row["schedule"][0]["levels"])
    assert row["best_member"] == int(np.argmax(row["selection_reward"])) and 0 <= row["test_mean_f1"] <= 1

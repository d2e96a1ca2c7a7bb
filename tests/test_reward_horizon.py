"""How long one round's choice lasts: the exploit replay, effects at a lag and the reading's command."""
import json

import numpy as np
import pytest

from adaptive_de.augment import MAX_LEVEL, OPS
from adaptive_de.errors import run_cli
from agents.fitted import op_effects, overwritten, probe_samples
from benchmarks import reward_horizon
from envs import PopulationEnv
from envs.population import exploit_count
from tests.conftest import write_probe_study

ERASE, HUE = OPS.index("erase"), OPS.index("hue")
MEMBERS, ROUNDS = 4, 16


def lagged_runs(lags: np.ndarray, runs: int, sigma: float, seed: int = 0) -> list:
    """Probe runs whose members' value after round t is ``sum_k levels(t - k) @ lags[k]`` plus noise of std ``sigma``:
    a round's choice moves the value by ``lags[0]`` at once and by ``lags[k]`` k rounds later. The rewards are the
    value's gains, less each round's mean, as the population's are; nothing is exploited."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(runs):
        levels = rng.integers(MAX_LEVEL + 1, size=(ROUNDS, MEMBERS, len(OPS)))
        value = np.zeros((ROUNDS + 1, MEMBERS))
        for t in range(ROUNDS):
            value[t + 1] = sum(levels[t - k] @ lags[k] for k in range(min(len(lags), t + 1)))
            value[t + 1] += rng.normal(0, sigma, MEMBERS)
        gains = np.diff(value, axis=0)
        out.append([{"levels": levels[t].tolist(), "sampler": ["uniform"] * MEMBERS,
                     "rewards": (gains[t] - gains[t].mean()).tolist()} for t in range(ROUNDS)])
    return out


def fading_erase() -> np.ndarray:
    """Erase costs 0.8 a level in its round, 0.2 one round later and nothing after; hue gains 0.4 at every lag."""
    lags = np.zeros((3, len(OPS)))
    lags[:, ERASE], lags[:, HUE] = (-0.8, -0.2, 0.0), 0.4
    return lags


def test_the_exploit_replay_names_the_members_the_population_overwrote():
    env = PopulationEnv(preset="smoke", members=4, rounds=8, steps_per_round=1, exploit_every=2)
    rng = np.random.default_rng(0)
    env.reset()
    run, losers = [], []
    for _ in range(env.rounds):
        _, rewards, _, infos = env.step(rng.integers(env.action_space.nvec, size=(4, len(env.action_space.nvec))))
        run.append({"rewards": rewards.tolist()})
        losers.append({i for i, info in enumerate(infos) if info["exploited_from"] is not None})
    assert sum(map(len, losers)) == 3  # after rounds 2, 4 and 6, one member each
    assert overwritten(run, env.config.exploit_every, exploit_count(env.config)) == losers


def test_the_replay_orders_by_running_sums_and_ties_as_the_population_does():
    run = [{"rewards": r} for r in ([1.0, 0.0, -1.0], [1.0, -2.0, 1.0], [0.0] * 3, [-3.0, 1.0, 2.0])]
    assert overwritten(run, 2, 1) == [set(), {1}, set(), set()]  # sums 2, -2, 0 after round 2; none after the last
    assert overwritten([{"rewards": [0.0] * 3}] * 2, 1, 1) == [{2}, set()]  # a tie: the later member counts as worse


def test_a_choice_is_measured_at_each_lag_and_replaced_members_are_left_out():
    runs = lagged_runs(fading_erase(), runs=8, sigma=0.3)
    for lag, want in enumerate(fading_erase()):
        fit = op_effects(*probe_samples(runs, lag, (ROUNDS + 1, 1)))  # an exploit interval past the run: none
        assert fit["effect"][ERASE] == pytest.approx(want[ERASE], abs=4 * fit["se"][ERASE])
        assert fit["effect"][HUE] == pytest.approx(0.4, abs=4 * fit["se"][HUE])
        null = np.delete(np.arange(len(OPS)), [ERASE, HUE])
        assert np.all(abs(fit["effect"][null]) < 4 * fit["se"][null])
    assert len(probe_samples(runs, 0)[1]) == 8 * ROUNDS * MEMBERS
    # exploits after rounds 2, 4, ..., 14 each replace one member: lag 1 drops those members of those rounds
    assert len(probe_samples(runs, 1, (2, 1))[1]) == 8 * ((ROUNDS - 1) * MEMBERS - 7)
    with pytest.raises(ValueError, match="exploit schedule"):
        probe_samples(runs, 1)


def test_the_command_writes_each_lags_effects_and_recipe_and_refuses_bad_input(tmp_path, capsys):
    source = write_probe_study(tmp_path / "probe.json", lagged_runs(fading_erase(), runs=6, sigma=0.3), [1, 2],
                               preset="smoke", env={"rounds": ROUNDS, "exploit_every": 2})
    out = tmp_path / "out"
    assert run_cli(reward_horizon.main, ["--probes", source, "--studies", "--lags", "0", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "error: --lags must be at least 1, not 0\n"
    bare = write_probe_study(tmp_path / "bare.json", lagged_runs(fading_erase(), runs=1, sigma=0.3), [1])
    assert run_cli(reward_horizon.main, ["--probes", bare, "--out", str(out)]) == 2  # no preset: no exploit schedule
    assert capsys.readouterr().err == f"error: {bare} is not a benchmarks.learning study file\n"
    assert not out.exists()
    assert run_cli(reward_horizon.main, ["--probes", source, "--studies", "--lags", "2", "--out", str(out)]) == 0
    data = json.loads((out / "reward_horizon.json").read_text())
    fits = data["probes"][0]["lags"]
    assert [f["lag"] for f in fits] == [0, 1, 2] and data["offsets"] is None
    # erase is edited off while its cost lasts (two rounds), not after; hue, which lasts, is raised at every lag
    assert [f["recipe"][ERASE] for f in fits] == [0, 0, data["base"][ERASE]]
    assert [f["recipe"][HUE] for f in fits] == [MAX_LEVEL] * 3
    assert (out / "reward_horizon.png").exists() and "| erase | " in capsys.readouterr().out

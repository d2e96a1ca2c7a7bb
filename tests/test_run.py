"""The run CLI end to end: a smoke PPO run, TensorBoard tags, evaluate, kill -9 and resume, and bad input."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from adaptive_de import evaluate, run
from adaptive_de.presets import RunConfig

SMOKE_DATA = "synth:train=200,val=50,test=50"
STUDY = Path(__file__).resolve().parents[1] / "docs" / "learning.json"  # the learning study: ppo's 8-round schedules


def run_cli(*args: str, check: bool = True, **popen) -> subprocess.CompletedProcess:
    # One torch thread: the smoke batches are tiny, and busy-waiting threads crawl on a shared 2-core machine.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # ADAPTIVE_DE_CACHE comes from conftest's session fixture
    result = subprocess.run([sys.executable, "-m", "adaptive_de.run", *args], env=env, capture_output=True,
                            text=True, timeout=300, **popen)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    logdir = tmp_path_factory.mktemp("runs")
    run_cli("--agent", "ppo", "--preset", "smoke", "--compare", "prior,randaugment", "--logdir", str(logdir),
            "--name", "smoke")
    return logdir / "smoke"


def event_tags(folder: Path) -> dict[str, list[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    events.Reload()
    return events.Tags()


def test_smoke_ppo_run_writes_the_run_folder(smoke_run):
    results = json.loads((smoke_run / "results.json").read_text())
    assert results["agent"] == "ppo"
    assert list(results["methods"]) == ["ppo", "prior", "randaugment"]
    config = RunConfig.from_dict(yaml.safe_load((smoke_run / "config.yaml").read_text()))
    c = config.env_config()
    assert c.preset == "smoke" and c.inner_reward == "f1_fp" and c.members == 2
    for name, row in results["methods"].items():
        assert 0 <= row["test_mean_f1"] <= 1 and len(row["test_f1"]) == 11 and row["wall_seconds"] > 0
        assert row["compute_inner_steps"] == c.members * c.rounds * c.steps_per_round  # equal compute
        assert row["best_member"] == int(np.argmax(row["selection_reward"]))
        assert len(row["schedule"]) == c.rounds and all(len(r["sampler"]) == c.members for r in row["schedule"])
        assert all((levels is None) == (name == "randaugment") for r in row["schedule"] for levels in r["levels"])
    table = (smoke_run / "results.md").read_text()
    assert "| `ppo` |" in table and "| `randaugment` |" in table and "skin" in table
    for picture in ("schedule.png", "curves.png"):
        assert (smoke_run / picture).read_bytes()[:4] == b"\x89PNG"
    model = torch.load(smoke_run / "final_model.pt", weights_only=True)
    assert "model" in model and model["config"]["model"] == "tiny"
    assert torch.load(smoke_run / "agent.pt", weights_only=True)["num_timesteps"] == c.rounds * c.members
    assert torch.load(smoke_run / "checkpoints" / "latest.pt", weights_only=True)["method"] is None  # all done


def test_tensorboard_has_per_method_curves_and_the_policy_distance(smoke_run):
    ppo = event_tags(smoke_run / "tb" / "ppo")
    assert {"population/val_reward_best", "population/reward_spread", "population/exploited", "levels/rotate",
            "policy/kl_from_prior", "policy/entropy", "final/test_mean_f1"} <= set(ppo["scalars"])
    assert "final/predictions" in ppo["images"]
    assert {"train/value_loss", "train/approx_kl"} <= set(event_tags(smoke_run / "tb" / "ppo" / "sb3")["scalars"])
    assert "levels/rotate" not in event_tags(smoke_run / "tb" / "randaugment")["scalars"]  # a policy object


def test_evaluate_prints_one_json_object(smoke_run, capsys):
    assert evaluate.main([str(smoke_run), "--data", SMOKE_DATA]) == 0
    scores = json.loads(capsys.readouterr().out)
    results = json.loads((smoke_run / "results.json").read_text())
    assert scores["mean_f1"] == pytest.approx(results["methods"]["ppo"]["test_mean_f1"])
    assert len(scores["f1"]) == 11 and 0 <= scores["fp_rate"] <= 1 and scores["num_images"] == 50
    assert evaluate.main([str(smoke_run), "--data", "lapa:/no/such/folder"]) == 2
    assert capsys.readouterr().err.startswith("error: folder not found")


def test_evaluate_reads_a_run_saved_before_the_model_field_was_renamed(smoke_run, tmp_path, capsys):
    old = tmp_path / "old-run"
    shutil.copytree(smoke_run, old)
    state = torch.load(old / "final_model.pt", weights_only=True)
    state["config"]["preset"] = state["config"].pop("model")  # TrainConfig's model field was once "preset"
    torch.save(state, old / "final_model.pt")
    assert evaluate.main([str(old), "--data", SMOKE_DATA]) == 0
    results = json.loads((smoke_run / "results.json").read_text())
    assert json.loads(capsys.readouterr().out)["mean_f1"] == pytest.approx(results["methods"]["ppo"]["test_mean_f1"])


def test_a_learner_without_a_prior_runs_and_logs_no_policy_distance(tmp_path):
    """DQN learns Q-values over a menu: it has no prior policy to measure its distance from."""
    assert run.main(["--agent", "dqn", "--preset", "smoke", "--compare", "none", "--logdir", str(tmp_path),
                     "--name", "dqn"]) == 0
    assert list(json.loads((tmp_path / "dqn" / "results.json").read_text())["methods"]) == ["dqn", "none"]
    scalars = set(event_tags(tmp_path / "dqn" / "tb" / "dqn")["scalars"])
    assert "population/val_reward_best" in scalars and "policy/kl_from_prior" not in scalars


@pytest.mark.parametrize("kill_after", [1, 3], ids=["in-ppo", "later"])
def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_numbers(tmp_path, kill_after):
    args = ["--agent", "ppo", "--preset", "smoke", "--seed", "5", "--compare", "none", "--logdir", str(tmp_path)]
    run_cli(*args, "--name", "whole")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "adaptive_de.run", *args, "--name", "k"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "k" / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + 240
    while first.poll() is None and time.monotonic() < deadline:
        if checkpoint.exists() and _saved_round(checkpoint) >= kill_after:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (tmp_path / "k" / "results.json").exists()
    resumed = run_cli("--resume", str(tmp_path / "k"))
    assert "resuming" in resumed.stderr
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())["methods"]
    again = json.loads((tmp_path / "k" / "results.json").read_text())["methods"]
    for method in ("ppo", "none"):
        assert again[method]["test_mean_f1"] == whole[method]["test_mean_f1"]
        assert again[method]["schedule"] == whole[method]["schedule"]
    steps = [int(e.step) for e in _scalars(tmp_path / "k" / "tb" / "ppo", "population/val_reward_best")]
    assert steps == [1, 2, 3, 4]  # the killed run's tail is purged, the curve continues without duplicates


def _saved_round(path: Path) -> int:
    try:
        state = torch.load(path, weights_only=True)
    except Exception:  # caught mid-rename: try again
        return 0
    return state["env"]["round"] if state.get("method") else 99


def _scalars(folder: Path, tag: str):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return events.Scalars(tag)


BAD_INPUTS = [
    (["--agent", "sac"], "unknown agent 'sac'; choose one of: ppo, prior, ppo_flat, prior_flat, replay:FILE"),
    (["--preset", "huge"], "unknown preset 'huge'; choose one of: cpu, gpu, paper, smoke"),
    (["--reward", "nope"], "unknown reward 'nope'; choose one of:"),
    (["--reward-kw", "w"], "malformed key=value 'w'"),
    (["--reward-kw", "x=1"], "f1_fp"),
    (["--inner-loss", "mse"], "unknown inner_loss 'mse'"),
    (["--compare", "none,none"], "--compare names a method twice"),
    (["--compare", "none,xyz"], "unknown agent 'xyz'"),
    (["--compare", "fixed:9,9"], "bad fixed agent '9,9'"),
    (["--compare", "replay:/no/such.json"], "replay:/no/such.json is not a benchmarks.learning study file"),
    (["--agent", f"replay:{STUDY}"], "holds 8 rounds per run; this run has 6"),  # the cpu preset's rounds
    (["--compare", "fitted:/no/such.json"], "error: /no/such.json is not a benchmarks.learning study file"),
    (["--compare", "ppo_fitted:/no/such.json"], "error: /no/such.json is not a benchmarks.learning study file"),
    (["--compare", "prior_fitted:/no/such.json"], "error: /no/such.json is not a benchmarks.learning study file"),
    (["--agent", f"fitted:{STUDY}"], "is not a benchmarks.learning study file with probe's"),  # no probe runs
    (["--n-envs", "1"], "a population needs at least 2 members, got members=1"),
    (["--env", "exploit_every=7"], "exploit_every=7 must be between 1 and the run's rounds (6)"),
    (["--env", "rounds=5"], "exploit_every=2 does not divide rounds=5"),
    (["--env", "membrs=3"], "unknown env option(s): membrs"),
    (["--preset", "smoke", "--data", "lapa:/no/such/folder"], "folder not found: /no/such/folder"),
    (["--config", "/no/such.yaml"], "config file /no/such.yaml does not exist"),
    (["--backend", "spark"], "unknown backend 'spark'; choose one of: inprocess, ray"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=[a[0][-1][:12] for a in BAD_INPUTS])
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, capsys, args, message):
    assert run.main([*args, "--logdir", str(tmp_path / "runs"), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_help_names_every_registered_agent():
    from agents import AGENTS
    text = " ".join(run.build_parser().format_help().split())  # argparse wraps lines
    listed = text.split("the agent (default ppo): ")[1].split(" --preset")[0]
    assert {form.partition(":")[0] for form in listed.replace(",...,", "").split(", ")} >= set(AGENTS)


def test_bad_resume_is_one_error_line(tmp_path, capsys, smoke_run):
    corrupt = tmp_path / "corrupt"
    (corrupt / "checkpoints").mkdir(parents=True)
    (corrupt / "config.yaml").write_text((smoke_run / "config.yaml").read_text())
    (corrupt / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")
    bad_yaml = tmp_path / "bad_yaml"
    bad_yaml.mkdir()
    (bad_yaml / "config.yaml").write_text("agent: [unclosed")
    cases = [([str(tmp_path / "missing")], "the folder does not exist"),
             ([str(tmp_path)], "not a run folder (no config.yaml)"),
             ([str(corrupt)], "cannot load checkpoint"),
             ([str(bad_yaml)], "config is not valid YAML"),
             ([str(smoke_run), "--agent", "dqn"], "--agent cannot change"),
             ([str(smoke_run), "--n-envs", "4"], "--n-envs cannot change")]
    for args, message in cases:
        assert run.main(["--resume", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("text, message", [("env: 5", "env must be a mapping"),
                                           ("agent_kw: {n_stepz: 4}", "unknown ppo option(s) n_stepz"),
                                           ("env: {rounds: many}", "rounds must be int"),
                                           ("timesteps: 5", "unknown config key(s): timesteps")])
def test_bad_config_file_is_one_error_line(tmp_path, capsys, text, message):
    (tmp_path / "c.yaml").write_text(text)
    assert run.main(["--config", str(tmp_path / "c.yaml"), "--logdir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_user_error_exit_code_and_no_traceback_in_a_real_process(tmp_path):
    result = run_cli("--agent", "sac", "--logdir", str(tmp_path), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: unknown agent") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_config_file_then_flags_and_reward_sides(tmp_path, smoke_run):
    parse = run.build_parser().parse_args
    config = run.new_config(parse(["--config", str(smoke_run / "config.yaml"), "--n-envs", "3", "--name", "c",
                                   "--env-reward", "mean_f1", "--inner-reward-kw", "w=0.5", "--env", "rounds=2"]))
    assert config.name == "c" and config.env["members"] == 3 and config.env["rounds"] == 2
    assert config.env["preset"] == "smoke" and config.compare == ["prior", "randaugment"]
    assert (config.env["reward"], config.env["reward_kw"]) == ("mean_f1", {})
    assert (config.env["inner_reward"], config.env["inner_reward_kw"]) == ("f1_fp", {"w": 0.5})
    both = run.new_config(parse(["--reward", "f1_fp", "--reward-kw", "w=0.4", "fp_norm=count"]))
    assert both.env["reward_kw"] == both.env["inner_reward_kw"] == {"w": 0.4, "fp_norm": "count"}
    assert both.env["preset"] == "cpu" and both.compare == list(run.DEFAULT_COMPARE)
    fixed = ",".join(["1"] * 16)
    assert run.parse_compare(f"none,fixed:{fixed},mixed,random", "ppo") == ["none", f"fixed:{fixed},mixed", "random"]
    assert run.parse_compare("ppo,none", "ppo") == ["none"]  # the agent itself is not compared twice


@pytest.mark.slow
def test_ray_backend_writes_the_in_process_numbers(tmp_path, smoke_run):
    """Members as Ray actors (1 CPU, 1 torch thread each, like the in-process smoke run): the same results."""
    ray = pytest.importorskip("ray")
    try:  # a sandbox that cannot start Ray's processes cannot test the backend
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    except Exception as e:
        pytest.skip(f"cannot start a local Ray: {type(e).__name__}: {e}")
    ray.shutdown()
    run_cli("--agent", "ppo", "--preset", "smoke", "--compare", "prior", "--backend", "ray", "--member-cpus", "1",
            "--logdir", str(tmp_path), "--name", "ray")
    got = json.loads((tmp_path / "ray" / "results.json").read_text())["methods"]
    want = json.loads((smoke_run / "results.json").read_text())["methods"]
    for method in ("ppo", "prior"):
        assert got[method]["test_mean_f1"] == want[method]["test_mean_f1"]
        assert got[method]["compute_inner_steps"] == want[method]["compute_inner_steps"]
    config = RunConfig.from_dict(yaml.safe_load((tmp_path / "ray" / "config.yaml").read_text()))
    assert config.backend == "ray" and config.backend_options == {"num_cpus": 1.0}

"""The learning study end to end on the smoke preset: equal compute, one warm-up per seed, resume, the probe read."""
import json

import numpy as np
import torch

from benchmarks import learning


def test_the_study_spends_equal_compute_warms_each_seed_once_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("ADAPTIVE_DE_CACHE", str(cache))
    argv = ["--quick", "--methods", "none", "prior", "--jobs", "1"]
    learning.main(argv)
    data = json.loads((tmp_path / "runs/learning-quick/learning.json").read_text())
    sizes = data["sizes"]
    steps = sizes["members"] * sizes["rounds"] * sizes["steps_per_round"]
    assert list(data["methods"]) == ["prior", "none"] and data["seeds"] == [0] and not data["resumed"]
    assert all(m["compute_inner_steps"] == steps for m in data["methods"].values())
    # each run keeps the thread count it trained at (its numbers depend on it), so pairing can check it
    assert all(m["torch_threads"] == [torch.get_num_threads()] for m in data["methods"].values())
    assert len(list((cache / "pretrained").glob("*.pt"))) == 1  # one warm-up for the seed, shared by its runs
    learning.main([*argv, "--resume"])  # every run is stored: read back, not retrained
    again = json.loads((tmp_path / "runs/learning-quick/learning.json").read_text())
    assert again["resumed"] and again["methods"] == data["methods"]


def test_a_study_reads_the_probe_file_asked_for_and_keeps_its_runs_apart_from_another_probes(tmp_path, monkeypatch):
    from adaptive_de.augment import MAX_LEVEL, OPS
    from tests.conftest import probe_runs, write_probe_study
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADAPTIVE_DE_CACHE", str(tmp_path / "cache"))
    hue = OPS.index("hue")
    effects = np.zeros(len(OPS))
    effects[hue] = 1.0  # one probe finds hue clearly good, the other clearly bad
    up = write_probe_study(tmp_path / "up.json", probe_runs(effects, runs=2, sigma=0.5), [7, 8], compute=100)
    down = write_probe_study(tmp_path / "down.json", probe_runs(-effects, runs=2, sigma=0.5), [7, 8], compute=300)
    argv, path = ["--quick", "--methods", "fitted", "--jobs", "1"], tmp_path / "runs/learning-quick/learning.json"
    learning.main([*argv, "--probe", up])
    first = json.loads(path.read_text())
    sizes = first["sizes"]
    steps = sizes["members"] * sizes["rounds"] * sizes["steps_per_round"]
    learning.main([*argv, "--probe", down, "--resume"])  # another probe's run is not read back in its place
    second = json.loads(path.read_text())
    assert (first["probe"], second["probe"]) == (up, down)
    assert first["methods"]["fitted"]["compute_inner_steps"] == steps + 200  # its own steps and the probe's 2 runs
    assert second["methods"]["fitted"]["compute_inner_steps"] == steps + 600
    hue_levels = [study["schedules"]["fitted"][0][0]["levels"][0][hue] for study in (first, second)]
    assert hue_levels == [MAX_LEVEL, 0]
    assert len(list((tmp_path / "runs/learning-study").glob("*/fitted@*-seed0.json"))) == 2  # both runs kept


def test_a_probe_that_trained_on_a_study_seed_is_refused_before_any_training(tmp_path, monkeypatch, capsys):
    from adaptive_de.augment import OPS
    from adaptive_de.errors import run_cli
    from tests.conftest import probe_runs, write_probe_study
    monkeypatch.chdir(tmp_path)
    probe = write_probe_study(tmp_path / "p.json", probe_runs(np.zeros(len(OPS)), runs=2, sigma=1.0), [7, 8])
    argv = ["--preset", "smoke", "--methods", "none", "fitted", "--probe", probe, "--seeds", "0", "7"]
    assert run_cli(learning.main, argv) == 2
    assert capsys.readouterr().err == (f"error: the probe runs in {probe} trained on seed 7, this run's own seed: "
                                       "their rewards would leak in\n")
    assert not (tmp_path / "runs").exists()


def test_on_a_drifting_stream_the_switch_oracle_trains_no_augmentation_until_the_stream_narrows(tmp_path, monkeypatch):
    from adaptive_de.augment import OPS
    from benchmarks.headroom import MATCHED_LEVELS

    monkeypatch.setenv("ADAPTIVE_DE_CACHE", str(tmp_path / "cache"))
    env = {"data": "synth:train=200,val=50,test=50,wide_until=0.5", "start": "scratch"}  # smoke: 4 rounds
    schedule = learning.method_task("smoke", env, learning.ORACLE_SWITCH, 5)["row"]["schedule"]
    matched = [MATCHED_LEVELS.get(op, 0) for op in OPS]
    assert [r["levels"] for r in schedule] == [[[0] * len(OPS)] * 2] * 2 + [[matched] * 2] * 2


def test_the_mix_diagnostic_draws_the_oracles_recipe_or_fitteds_for_every_member(tmp_path, monkeypatch):
    from adaptive_de.augment import MAX_LEVEL, OPS
    from benchmarks.headroom import MATCHED_LEVELS
    from tests.conftest import probe_runs, write_probe_study
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADAPTIVE_DE_CACHE", str(tmp_path / "cache"))
    hue = OPS.index("hue")
    effects = np.zeros(len(OPS))
    effects[hue] = 1.0
    probe = write_probe_study(tmp_path / "up.json", probe_runs(effects, runs=2, sigma=0.5), [7, 8], compute=100)
    learning.main(["--quick", "--methods", learning.ORACLE_MIX, "--jobs", "1", "--probe", probe])
    data = json.loads((tmp_path / "runs/learning-quick/learning.json").read_text())
    sizes = data["sizes"]
    # a diagnostic in no comparison: it counts its own steps only, and names the probe its recipe came from
    assert data["methods"][learning.ORACLE_MIX]["compute_inner_steps"] == (
        sizes["members"] * sizes["rounds"] * sizes["steps_per_round"])
    assert data["probe"] == probe and list((tmp_path / "runs/learning-study").glob("*/oracle_mix@up-seed0.json"))
    oracle = [MATCHED_LEVELS.get(op, 0) for op in OPS]
    drawn = [levels for r in data["schedules"][learning.ORACLE_MIX][0] for levels in r["levels"]]
    fitted = [levels for levels in drawn if levels != oracle]
    assert fitted and all(levels == fitted[0] for levels in fitted) and fitted[0][hue] == MAX_LEVEL
    assert len(fitted) < len(drawn)  # both recipes drawn

"""The learning study end to end on the smoke preset: equal compute, one warm-up per seed, resume."""
import json

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

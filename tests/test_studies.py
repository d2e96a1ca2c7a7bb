"""The study scripts' own logic: learning-study bookkeeping and the GPU-check report (no training here)."""
import json

import pytest

from adaptive_de.augment import OPS
from agents.baselines import parse_fixed
from benchmarks import gpu_report, learning
from benchmarks.headroom import MATCHED_LEVELS
from envs import SAMPLING_MODES


def scores(*values):
    return {"test_mean_f1": list(values), "test_fp_rate": [0.1] * len(values)}


def test_fixed_spec_round_trips_through_the_fixed_agent():
    action = [MATCHED_LEVELS.get(op, 0) for op in OPS] + [list(SAMPLING_MODES).index("class_balanced")]
    spec = learning.fixed_spec(action)
    assert spec.endswith(",class_balanced")
    assert parse_fixed(spec.removeprefix("fixed:")).tolist() == action


def test_gap_is_to_the_best_baseline_and_paired_per_seed():
    methods = {"ppo": scores(0.50, 0.44), "none": scores(0.30, 0.20), "random": scores(0.45, 0.45),
               "best_fixed": scores(0.47, 0.45), learning.ORACLE: scores(0.9, 0.9)}
    assert learning.best_baseline(methods) == "best_fixed"  # the oracle is not a baseline
    row = next(line for line in learning.table({"methods": methods}).splitlines() if line.startswith("| ppo "))
    # per seed +3.0 and -1.0 points, mean +1.00
    assert "+1.00 (per seed: +3.0, -1.0)" in row


def test_ppo_variants_are_keyed_by_result_name():
    assert learning.ppo_variants(["default", "menu"]) == {"ppo": learning.VARIANTS["default"],
                                                          "ppo[menu]": learning.VARIANTS["menu"]}
    for variant in learning.VARIANTS.values():
        assert variant["agent"] in ("ppo", "ppo_menu")


def test_gpu_report_formats_the_files_and_names_what_did_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_report, "DOCS", tmp_path)
    assert gpu_report.report().count("not run") == 3
    machine = {"torch": "2.x", "cores": 16}
    training = {"device": "Card X", "preset": "vit-p12s8", "batch": 256, "image_size": 112, "dtype": "bf16 autocast",
                "images_per_s": 2000.0, "achieved_tflops": 200.0, "peak_tflops": 1000.0, "mfu": 0.2,
                "max_memory_gib": 20.0}
    (tmp_path / "bench_model_cuda.json").write_text(json.dumps({"machine": machine, "cuda_training": training}))
    (tmp_path / "gpu_check_run.json").write_text(json.dumps({"methods": {"ppo": {"test_mean_f1": 0.6454}}}))
    text = gpu_report.report()
    assert "**Card X**" in text and "MFU 20.0%" in text and "`ppo` 64.54" in text
    assert text.count("not run") == 1  # only the augmentation benchmark is missing


@pytest.mark.parametrize("module", [learning, gpu_report])
def test_study_modules_document_their_command(module):
    assert f"python -m {module.__name__}" in module.__doc__


def test_learning_report_lists_the_main_study_then_side_studies(tmp_path, monkeypatch):
    monkeypatch.setattr(learning, "DOCS", tmp_path)
    machine = {"cuda_device": None, "cpu": "CPU X", "cores": 2}
    study = {"machine": machine, "preset": "cpu", "seeds": [0, 1], "inner_steps": 120, "search_cost_runs": 8,
             "best_fixed_search_cost_runs": 4, "variants": {"ppo": {"agent": "ppo"}},
             "methods": {"ppo": scores(0.52, 0.46), "best_fixed": scores(0.50, 0.45)}}
    (tmp_path / "learning.json").write_text(json.dumps(study))
    side = {**study, "env": {"steps_per_round": 50}, "inner_steps": 300,
            "machine": {**machine, "cuda_device": "Card Y"}}
    (tmp_path / "learning_long.json").write_text(json.dumps(side))
    text = learning.report()
    assert "**+1.50** mean-F1 points" in text and ": met." in text  # (2.0 + 1.0) / 2
    assert text.index("learning_methods.png") < text.index("Side study `learning_long.json`")
    assert "`steps_per_round=50`" in text and "Card Y" in text and "300 inner steps" in text


@pytest.mark.parametrize("argv, message", [(["--env", "foo=1"], "unknown env option(s): foo"),
                                           (["--preset", "nope"], "unknown preset 'nope'")])
def test_learning_study_refuses_bad_options_in_one_line(argv, message, capsys):
    from adaptive_de.errors import run_cli
    assert run_cli(learning.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1

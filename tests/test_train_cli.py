"""python -m adaptive_de.train: the per-class F1 report, the reward-tuning phase, and bad input."""
import json
import subprocess
import sys

import pytest

from adaptive_de.train import main

DATA = "synth:train=32,val=16,test=16"


def test_prints_per_class_table_and_tuning_phase(tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["--data", DATA, "--steps", "6", "--batch-size", "8", "--loss", "ce_then_reinforce",
                 "--tune-from", "0.5", "--reward", "f1_fp", "--reward-kw", "w=0.3", "--eval-every", "2",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "reward tuning phase from step 3" in text
    assert "REINFORCE (rloo, class credit, K=4, weight 1, + 1 x CE) on f1_fp(w=0.3)" in text
    for name in ("left_eye", "right_eyebrow", "inner_mouth", "mean F1 (w/o background)", "FP rate"):
        assert name in text
    result = json.loads(out.read_text())
    assert {"val", "test", "curve", "config"} <= set(result) and len(result["test"]["f1"]) == 11
    # Rounds of 2 steps, cut at the switch so the CE model is scored too.
    phases = [(p["step"], p["phase"]) for p in result["curve"]]
    assert phases == [(2, "ce"), (3, "ce"), (5, "reinforce"), (6, "reinforce")]


@pytest.mark.parametrize("args, message", [
    (["--data", "lapa:/does/not/exist"], "not found"),
    (["--reward", "nope"], "unknown reward 'nope'"),
    (["--reward-kw", "w"], "malformed key=value"),
    (["--model", "huge"], "unknown model preset"),
    (["--loss", "mse"], "invalid choice"),
    (["--steps", "0"], "steps must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = subprocess.run([sys.executable, "-m", "adaptive_de.train", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr

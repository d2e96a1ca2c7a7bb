"""``python -m adaptive_de.data.synth``: the LaPa layout it writes, its errors, and that it never half-writes."""
from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from adaptive_de.data import synth
from adaptive_de.errors import run_cli

TINY = ["--size", "16", "--train", "3", "--val", "1", "--test", "2"]


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adaptive_de.data.synth", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_writes_lapa_layout(tmp_path):
    out = tmp_path / "ds"
    done = run_module("--out", str(out), *TINY, "--seed", "2", "--shift", "0.5")
    assert done.returncode == 0, done.stderr
    for split, n in {"train": 3, "val": 1, "test": 2}.items():
        stems = [f"{i:06d}" for i in range(n)]
        assert sorted(p.stem for p in (out / split / "images").iterdir()) == stems
        assert sorted(p.stem for p in (out / split / "labels").iterdir()) == stems
    with Image.open(out / "train" / "images" / "000000.png") as image:
        assert (image.mode, image.size) == ("RGB", (16, 16))
    with Image.open(out / "train" / "labels" / "000000.png") as label:
        assert (label.mode, label.size) == ("L", (16, 16))
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary folder left beside it


def test_cli_error_is_one_line_without_traceback(tmp_path):
    done = run_module("--out", str(tmp_path / "ds"), "--train", "-5")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: train count must be >= 0, got -5"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--size", "8"], "size must be at least 16"),
    (["--size", "big"], "invalid int value: 'big'"),
    (["--shift", "1.5"], "shift must be in [0, 1]"),
    (["--val", "-1"], "val count must be >= 0"),
    (["--colour"], "unrecognized arguments: --colour"),
])
def test_bad_values(tmp_path, capsys, args, message):
    assert run_cli(synth.main, ["--out", str(tmp_path / "ds"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_missing_out(capsys):
    assert run_cli(synth.main, []) == 2
    assert "--out" in capsys.readouterr().err


def test_refuses_non_empty_folder_unless_forced(tmp_path, capsys):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert run_cli(synth.main, ["--out", str(out), *TINY]) == 2
    assert f"{out} exists and is not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"

    assert run_cli(synth.main, ["--out", str(out), *TINY, "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["test", "train", "val"]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_empty_folder_is_reused(tmp_path):
    (tmp_path / "ds").mkdir()
    assert run_cli(synth.main, ["--out", str(tmp_path / "ds"), *TINY]) == 0
    assert (tmp_path / "ds" / "test" / "labels" / "000001.png").is_file()


def test_out_is_a_file(tmp_path, capsys):
    (tmp_path / "ds").write_text("x")
    assert run_cli(synth.main, ["--out", str(tmp_path / "ds"), *TINY, "--force"]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("existing", [False, True])
def test_failure_midway_leaves_nothing_behind(tmp_path, monkeypatch, existing):
    out = tmp_path / "ds"
    if existing:
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    real = synth.render_faces
    calls = []

    def render_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "CHUNK", 1)
    monkeypatch.setattr(synth, "render_faces", render_then_fail)
    with pytest.raises(KeyboardInterrupt):
        synth.main(["--out", str(out), *TINY, "--force"])
    assert [p.name for p in tmp_path.iterdir()] == (["ds"] if existing else [])
    if existing:
        assert [p.name for p in out.iterdir()] == ["keep.txt"]

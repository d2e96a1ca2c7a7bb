"""Overlay / grid drawing and ``python -m adaptive_de.data.preview``."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from adaptive_de.data import draw
from adaptive_de.data.labels import CELEBAMASK_HQ, LAPA
from adaptive_de.data.preview import main, pick, preview
from adaptive_de.errors import run_cli


def test_overlay_colours_labelled_pixels_only():
    images = torch.full((1, 3, 2, 2), 100, dtype=torch.uint8)
    labels = torch.tensor([[[0, 1], [10, 0]]], dtype=torch.uint8)
    out = draw.overlay(images, labels, LAPA, alpha=0.5)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    assert out[0, :, 0, 0].tolist() == [100, 100, 100]
    assert out[0, :, 0, 1].tolist() == [50, 126, 178]   # halfway to skin (0, 153, 255)
    assert out[0, :, 1, 0].tolist() == [178, 50, 55]    # halfway to hair (255, 0, 10)


def test_grid_layout():
    tiles = torch.zeros((5, 3, 4, 6), dtype=torch.uint8)
    picture = draw.grid(tiles, ncol=2, pad=1)
    assert picture.shape == (3, 3 * 5 + 1, 2 * 7 + 1)
    assert picture[:, 0].eq(255).all() and picture[:, 1:5, 1:7].eq(0).all()
    assert picture[:, -5:-1, -7:-1].eq(255).all()  # the sixth slot is empty


def test_preview_grid_size_and_policy_hook():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 19, (3, 32, 32), dtype=torch.uint8)
    picture = preview(images, labels, CELEBAMASK_HQ)
    tiles_height, width = 2 * (128 + 2) + 2, 4 * (128 + 2) + 2  # 32 px upscaled x4, 2 pairs a row
    assert picture.shape == (3, tiles_height + draw.legend(CELEBAMASK_HQ, width).shape[1], width)

    seen = []

    def policy(x, y, *, generator):
        seen.append(len(x))
        return x.flip(-1), y.flip(-1)

    flipped = preview(images, labels, CELEBAMASK_HQ, policy=policy)
    assert seen == [3] and not torch.equal(flipped, picture)


def test_cli_policy_changes_the_picture(tmp_path):
    """--policy augments before drawing; the same seed gives the same picture."""
    from PIL import Image

    from adaptive_de.data.preview import main
    base = ["synth:train=8,val=4,test=4", "--n", "4", "--seed", "1"]
    outs = {}
    for name, extra in (("plain", []), ("aug", ["--policy", "levels:4,0,0,0,0,4,3,0,0,0,0,0,0,0,0,0"]),
                        ("aug2", ["--policy", "levels:4,0,0,0,0,4,3,0,0,0,0,0,0,0,0,0"])):
        assert main([*base, "--out", str(tmp_path / f"{name}.png"), *extra]) == 0
        outs[name] = torch.from_numpy(np.asarray(Image.open(tmp_path / f"{name}.png")).copy())
    assert not torch.equal(outs["plain"], outs["aug"]) and torch.equal(outs["aug"], outs["aug2"])


def test_pick_is_reproducible():
    data = [(torch.full((3, 2, 2), i, dtype=torch.uint8), torch.zeros((2, 2), dtype=torch.uint8)) for i in range(10)]
    images, labels = pick(data, n=4, seed=1)
    assert images.shape == (4, 3, 2, 2) and labels.shape == (4, 2, 2)
    assert torch.equal(images, pick(data, n=4, seed=1)[0])
    assert len(pick(data, n=50)[0]) == 10


def test_cli_writes_png(tmp_path):
    out = tmp_path / "grid.png"
    env = {**os.environ, "ADAPTIVE_DE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "adaptive_de.data.preview", "synth:size=16,train=5", "--split",
                           "train", "--out", str(out), "--n", "4", "--size", "32"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    width = 4 * (128 + 2) + 2
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (width, 2 * (128 + 2) + 2 + draw.legend(LAPA, width).shape[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "grid.png"]


def test_cli_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ADAPTIVE_DE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "grid.png"
    for argv, message in [(["nope:x", "--out", str(out)], "unknown data set spec"),
                          (["synth:train=2,size=16", "--out", str(out), "--n", "0"], "--n must be at least 1"),
                          ([f"lapa:{tmp_path / 'missing'}", "--out", str(out)], str(tmp_path / "missing")),
                          (["synth:train=2,size=16", "--out", str(tmp_path)], f"cannot write {tmp_path}")]:
        assert run_cli(main, argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()

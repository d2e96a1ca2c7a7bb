"""Data set readers: synth cache, LaPa and CelebAMask-HQ layouts, and their errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from adaptive_de.data import FaceParsingFolder, FaceParsingSet, load, open_dataset, synth
from adaptive_de.data.labels import CELEBAMASK_HQ, LAPA
from adaptive_de.data.synthetic import nuisances_for, render_faces
from adaptive_de.errors import UserError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "celebamask-hq-samples"
TINY = "size=16,train=3,val=2,test=2"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("ADAPTIVE_DE_CACHE", str(root))
    return root


def save_png(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def make_lapa(root: Path, split: str = "train", n: int = 2, size: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        save_png(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), root / split / "images" / f"face{i}.png")
        save_png(rng.integers(0, 11, (size, size), dtype=np.uint8), root / split / "labels" / f"face{i}.png")
    return root


def fail_render(*args, **kwargs):
    raise AssertionError("render_faces called although the cache should have been used")


# ---------------------------------------------------------------- synth

def test_writer_reader_round_trip_is_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "CHUNK", 2)  # several chunks, so render_faces' start= is exercised
    counts = {"train": 5, "val": 2, "test": 3}
    out = synth.write_dataset(tmp_path / "ds", size=24, counts=counts, seed=3, shift=0.5)
    for split, n in counts.items():
        data = load(f"lapa:{out}", split)
        images, labels = render_faces(n, size=24, seed=3, split=split, shift=0.5)
        assert data.scheme is LAPA
        assert data.names == [f"{i:06d}" for i in range(n)]
        assert torch.equal(data.images, images) and torch.equal(data.labels, labels)
        cached = load("synth:size=24,train=5,val=2,test=3,seed=3,shift=0.5", split)
        assert torch.equal(cached.images, images) and torch.equal(cached.labels, labels)
        assert cached.names == data.names


def test_synth_spec_is_cached_and_reused(cache, monkeypatch):
    first = load(f"synth:{TINY}", "val")
    assert isinstance(first, FaceParsingSet)
    assert first.images.shape == (2, 3, 16, 16) and first.images.dtype == torch.uint8
    assert first.labels.shape == (2, 16, 16) and first.labels.dtype == torch.uint8
    assert [p.name for p in cache.glob("synth-*/*.pt")] == ["val.pt"]

    monkeypatch.setattr(synth, "render_faces", fail_render)
    again = load(f"synth:{TINY}", "val")
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    with pytest.raises(AssertionError):  # other parameters → another cache entry, rendered afresh
        load(f"synth:{TINY},seed=1", "val")


def test_a_drifting_synth_stream_shows_its_faces_under_test_nuisances_first(cache):
    plain = load(f"synth:{TINY}", "train")
    drift = load(f"synth:{TINY},wide_until=0.5", "train")
    assert torch.equal(drift.images, plain.images) and plain.early is None and drift.early_until == 0.5
    images, labels = render_faces(3, size=16, split="train", nuisances=nuisances_for("test"))
    assert torch.equal(drift.early.images, images) and torch.equal(drift.early.labels, labels)
    assert not torch.equal(images, plain.images) and drift.early.names == plain.names
    assert load(f"synth:{TINY},wide_until=0.5", "val").early is None
    # wide_until only says when to switch: both specs share one cache entry, and the wide faces are rendered once
    assert sorted(p.name for p in cache.glob("synth-*/*.pt")) == ["train-wide.pt", "train.pt", "val.pt"]


def test_synth_size_argument_sets_render_size():
    data = load(f"synth:{TINY}", "train", size=20)
    assert data.images.shape == (3, 3, 20, 20)
    assert torch.equal(data.images, render_faces(3, size=20, split="train")[0])


@pytest.mark.parametrize("spec, split, message", [
    ("synth:bogus=1", "train", "bogus=1"),
    ("synth:seed=x", "train", "seed='x'"),
    ("synth:size=8", "train", "size must be at least"),
    ("synth:shift=3", "train", "shift must be in"),
    ("synth:wide_until=1", "train", "wide_until must be in"),
    ("synth:train=-1", "train", "train count must be >= 0"),
    ("synth:train=0", "train", "no images"),
    ("synth", "holdout", "unknown split 'holdout'"),
])
def test_bad_synth_specs(spec, split, message):
    with pytest.raises(UserError, match=message):
        load(spec, split)


# ---------------------------------------------------------------- LaPa

def test_lapa_reader_resizes_and_streams(tmp_path):
    root = make_lapa(tmp_path / "LaPa", n=3, size=12)
    (root / "train" / "landmarks").mkdir()  # present in the real layout, ignored
    data = load(f"lapa:{root}", "train", size=8)
    assert data.images.shape == (3, 3, 8, 8) and data.labels.shape == (3, 8, 8)
    assert data.names == ["face0", "face1", "face2"]
    assert int(data.labels.max()) <= 10

    folder = FaceParsingFolder(f"lapa:{root}", "train", size=8)
    images, labels = next(iter(DataLoader(folder, batch_size=3)))
    assert torch.equal(images, data.images) and torch.equal(labels, data.labels)
    assert isinstance(open_dataset(f"lapa:{root}", "train"), FaceParsingFolder)


def test_lapa_jpg_images_are_read(tmp_path):
    root = make_lapa(tmp_path / "LaPa", n=1, size=16)
    png = root / "train" / "images" / "face0.png"
    Image.open(png).save(png.with_suffix(".jpg"), quality=95)
    png.unlink()
    assert load(f"lapa:{root}", "train").images.shape == (1, 3, 16, 16)


# ---------------------------------------------------------------- CelebAMask-HQ

def test_real_celebamask_samples():
    if not SAMPLES.is_dir():
        pytest.skip(f"{SAMPLES} not present")
    full = load(f"celebamask:{SAMPLES}", "all", size=512)
    assert full.scheme is CELEBAMASK_HQ
    assert full.names == ["0", "1", "2", "3"]
    assert full.images.shape == (4, 3, 512, 512)
    assert set(full.labels[0].unique().tolist()) == {0, 1, 2, 4, 5, 6, 7, 8, 11, 12, 13, 17}
    assert set(full.labels[1].unique().tolist()) == {0, 1, 2, 4, 5, 6, 7, 8, 9, 11, 12, 13, 17, 18}
    small = load(f"celebamask:{SAMPLES}", "all", size=64)
    assert small.images.shape == (4, 3, 64, 64)
    for big, little in zip(full.labels, small.labels, strict=True):
        assert set(little.unique().tolist()) <= set(big.unique().tolist())


def make_celebamask_release(root: Path) -> Path:
    """Three 16 px images with 8 px part masks; image 0's parts overlap; partition puts one image per split."""
    rng = np.random.default_rng(1)
    for i in range(3):
        save_png(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), root / "CelebA-HQ-img" / f"{i}.png")
    box = np.zeros((8, 8), dtype=np.uint8)
    skin, nose, hair = box.copy(), box.copy(), box.copy()
    skin[1:7, 1:7] = 255
    nose[3:5, 3:6] = 255
    hair[0:4, :] = 255
    anno = root / "CelebAMask-HQ-mask-anno" / "0"
    # written hair first: painting order must come from the class order, not from file order
    for part, mask in (("hair", hair), ("nose", nose), ("skin", skin)):
        save_png(mask, anno / f"00000_{part}.png")
    save_png(np.stack([skin] * 3, axis=-1), anno / "00001_skin.png")  # RGB masks, as cv2 writes them
    save_png(nose, anno / "00002_nose.png")
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text(
        "idx         orig_idx        orig_file\n0 10 000011.jpg\n1 20 000021.jpg\n2 30 000031.jpg\n")
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000011.jpg 2\n000021.jpg 0\n000031.jpg 1\n")
    return root


def test_celebamask_release_merges_parts_in_official_order_and_splits(tmp_path):
    root = make_celebamask_release(tmp_path / "CelebAMask-HQ")
    test = load(f"celebamask:{root}", "test")
    assert test.names == ["0"]
    assert test.images.shape == (1, 3, 8, 8)  # images follow the label maps' size, as in the official release
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[1:7, 1:7] = 1   # skin
    expected[3:5, 3:6] = 2   # nose over skin
    expected[0:4, :] = 13    # hair over both
    assert np.array_equal(test.labels[0].numpy(), expected)
    assert load(f"celebamask:{root}", "train").names == ["1"]
    assert load(f"celebamask:{root}", "val", size=4).labels.shape == (1, 4, 4)
    assert load(f"celebamask:{root}", "all").names == ["0", "1", "2"]


# ---------------------------------------------------------------- bad input

def _lapa_case(tmp_path: Path, broken: str) -> tuple[str, str, str]:
    """Build a LaPa folder broken in one way; return (spec, split, text the error must contain)."""
    root = make_lapa(tmp_path / "LaPa")
    images, labels = root / "train" / "images", root / "train" / "labels"
    if broken == "missing folder":
        return f"lapa:{tmp_path / 'nowhere'}", "train", str(tmp_path / "nowhere")
    if broken == "missing split folder":
        return f"lapa:{root}", "val", str(root / "val" / "images")
    if broken == "unknown split":
        return f"lapa:{root}", "training", "train, val, test"
    if broken == "no images":
        for f in [*images.iterdir(), *labels.iterdir()]:
            f.unlink()
        return f"lapa:{root}", "train", str(images)
    if broken == "image without label":
        (labels / "face1.png").unlink()
        return f"lapa:{root}", "train", str(images / "face1.png")
    if broken == "label without image":
        save_png(np.zeros((8, 8), np.uint8), labels / "stray.png")
        return f"lapa:{root}", "train", str(labels / "stray.png")
    if broken == "ids outside scheme":
        save_png(np.full((8, 8), 11, np.uint8), labels / "face1.png")
        return f"lapa:{root}", "train", str(labels / "face1.png")
    if broken == "corrupt image":
        (images / "face0.png").write_bytes(b"\x89PNG not really")
        return f"lapa:{root}", "train", str(images / "face0.png")
    if broken == "truncated image":
        data = (images / "face0.png").read_bytes()
        (images / "face0.png").write_bytes(data[: len(data) // 2])
        return f"lapa:{root}", "train", str(images / "face0.png")
    if broken == "colour label":
        save_png(np.zeros((8, 8, 3), np.uint8), labels / "face0.png")
        return f"lapa:{root}", "train", str(labels / "face0.png")
    if broken == "size mismatch":
        save_png(np.zeros((4, 4), np.uint8), labels / "face1.png")
        return f"lapa:{root}", "train", str(labels / "face1.png")
    raise ValueError(broken)


@pytest.mark.parametrize("broken", ["missing folder", "missing split folder", "unknown split", "no images",
                                    "image without label", "label without image", "ids outside scheme",
                                    "corrupt image", "truncated image", "colour label", "size mismatch"])
def test_bad_lapa_input_names_the_file(tmp_path, broken):
    spec, split, named = _lapa_case(tmp_path, broken)
    with pytest.raises(UserError) as info:
        load(spec, split, size=8)
    message = str(info.value)
    assert named in message and "\n" not in message


def test_size_mismatch_is_an_error_even_when_resizing(tmp_path):
    root = make_lapa(tmp_path / "LaPa")
    save_png(np.zeros((4, 4), np.uint8), root / "train" / "labels" / "face0.png")
    with pytest.raises(UserError, match="is 8x8 but its label"):
        load(f"lapa:{root}", "train", size=16)


def test_mixed_sizes_need_a_size(tmp_path):
    root = make_lapa(tmp_path / "LaPa", n=1, size=8)
    make_lapa(tmp_path / "other", n=1, size=6)
    for kind in ("images", "labels"):
        (tmp_path / "other" / "train" / kind / "face0.png").rename(root / "train" / kind / "face9.png")
    with pytest.raises(UserError, match="pass a size"):
        load(f"lapa:{root}", "train")
    assert load(f"lapa:{root}", "train", size=8).images.shape == (2, 3, 8, 8)


@pytest.mark.parametrize("spec, message", [
    ("imagenet:/data", "synth[:key=value,...], lapa:DIR, celebamask:DIR"),
    ("lapa:", "needs a folder"),
    ("lapa", "needs a folder"),
])
def test_bad_spec(spec, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(spec, "train")


def test_bad_celebamask_input_names_the_file(tmp_path):
    root = make_celebamask_release(tmp_path / "release")
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(UserError, match="list_eval_partition.txt"):
        load(f"celebamask:{root}", "train")
    with pytest.raises(UserError, match="valid: train, val, test, all"):
        load(f"celebamask:{root}", "everything")

    (root / "CelebAMask-HQ-mask-anno" / "0" / "00002_nose.png").unlink()
    with pytest.raises(UserError, match=r"image without a label: .*2\.png"):
        load(f"celebamask:{root}", "all")
    save_png(np.zeros((8, 8), np.uint8), root / "CelebAMask-HQ-mask-anno" / "0" / "00002_beard.png")
    with pytest.raises(UserError, match="00002_beard.png"):
        load(f"celebamask:{root}", "all")

    flat = tmp_path / "flat"
    save_png(np.zeros((8, 8, 3), np.uint8), flat / "a.jpg")
    save_png(np.zeros((8, 8), np.uint8), flat / "a.png")
    save_png(np.full((8, 8), 19, np.uint8), flat / "b.png")
    with pytest.raises(UserError, match="label without an image: .*b.png"):
        load(f"celebamask:{flat}", "all")
    save_png(np.zeros((8, 8, 3), np.uint8), flat / "b.jpg")
    with pytest.raises(UserError, match=r"b.png has ids \[19\] outside celebamask_hq"):
        load(f"celebamask:{flat}", "all")
    with pytest.raises(UserError, match="valid: all"):
        load(f"celebamask:{flat}", "train")

"""Real labelled faces (../shared/data/realfaces, never copied into the project): the official
CelebAMask-HQ layout, a scheme with an ignore id, 6- and 9-class schemes, and a short training run
on real FASSEG faces. Skipped where the folder is absent."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adaptive_de.config import TrainConfig
from adaptive_de.data import load
from adaptive_de.data.labels import CELEBAMASK_HQ, LAPA
from adaptive_de.metrics import parsing_scores
from adaptive_de.trainer import InnerTrainer

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "realfaces"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} is absent")

FASSEG = """\
name: fasseg
classes: [background, skin, hair, eyes, nose, mouth]   # eyebrows are labelled hair
flip_pairs: []                                         # one class for both eyes
ignore_index: null
"""
LAPA_IGNORE = """\
name: lapa_lowq
classes: [background, skin, left_eyebrow, right_eyebrow, left_eye, right_eye, nose, upper_lip, inner_mouth,
          lower_lip, hair]
flip_pairs: [[2, 3], [4, 5]]
ignore_index: 255
"""
MUT1NY = """\
classes: [background, skin, eyes, lips, nose, ears, eyebrows, teeth, hair]
flip_pairs: []
ignore_index: null
"""


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTIVE_DE_CACHE", str(tmp_path / "cache"))


def scheme_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scheme.yaml"
    path.write_text(text)
    return path


def fasseg_spec(tmp_path: Path, subset: str = "frontal02") -> str:
    return (f"folder:{REAL / 'fasseg'},scheme={scheme_file(tmp_path, FASSEG)},include={subset}_*,"
            f"test={subset}_test_*,train=0.75,val=0.25")


def test_the_official_celebamask_layout_merges_to_the_published_label_maps():
    """Part masks merged in the official order equal the merged maps of the same faces from other sources."""
    parts = load(f"celebamask:{REAL / 'celebamask'}", "all", size=512)
    merged = load(f"celebamask:{REAL / 'celebamask_merged'}", "all", size=512)
    assert parts.scheme is CELEBAMASK_HQ and len(parts) == 15
    index = {name: i for i, name in enumerate(merged.names)}
    for i, name in enumerate(parts.names):
        assert torch.equal(parts.labels[i], merged.labels[index[name]]), name
    assert parts.images.shape == (15, 3, 512, 512) and parts.labels.max() < CELEBAMASK_HQ.num_classes


def test_a_scheme_with_an_ignore_id_keeps_it_and_scores_without_it(tmp_path):
    data = load(f"folder:{REAL / 'lapa_lowq'},scheme={scheme_file(tmp_path, LAPA_IGNORE)}", "all", size=64)
    assert len(data) == 11 and data.scheme.classes == LAPA.classes
    ids = set(data.labels.unique().tolist())
    assert 255 in ids and ids - {255} <= set(range(11)) and len(ids - {255}) >= 8
    # a prediction right everywhere but on the ignored pixels, where it is wrong, scores a perfect mean F1
    pred = data.labels.long().masked_fill(data.labels == 255, 1)
    assert parsing_scores(pred, data.labels.long(), 11, ignore_index=255)["mean_f1"] == 1.0


def test_six_and_nine_class_schemes_read_real_faces(tmp_path):
    sizes = {split: len(load(fasseg_spec(tmp_path), split, size=64)) for split in ("train", "val", "test")}
    assert sizes == {"train": 15, "val": 5, "test": 50}  # frontal02: 20 train faces, 5 of them for val
    test = load(fasseg_spec(tmp_path), "test", size=64)
    assert test.scheme.num_classes == 6 and set(test.labels.unique().tolist()) == set(range(6))
    mut1ny = load(f"folder:{REAL / 'mut1ny'},scheme={scheme_file(tmp_path, MUT1NY)}", "all")
    assert mut1ny.images.shape == (5, 3, 256, 256) and set(mut1ny.labels.unique().tolist()) == set(range(9))


def test_a_short_run_on_real_fasseg_faces_beats_the_all_background_score(tmp_path):
    """The tiny Face Transformer, 150 CE steps on 15 real faces (~20 s on 2 cores): test mean F1 >= 0.3
    above predicting background everywhere (0.0: every face class is missed)."""
    trainer = InnerTrainer(TrainConfig(data=fasseg_spec(tmp_path), steps=150, batch_size=16, seed=0))
    trainer.train_round(None, steps=150)
    scores = trainer.evaluate("test")
    labels = trainer.data["test"].labels.long()
    background = parsing_scores(torch.zeros_like(labels), labels, 6)["mean_f1"]
    assert background == 0.0
    assert scores["mean_f1"] >= background + 0.3, scores

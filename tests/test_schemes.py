"""User label schemes (scheme.yaml, module:object), folder: specs and their splits, and the ignore id
through flips, metrics, rewards and losses."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.functional.classification import multiclass_f1_score

from adaptive_de.augment.geometric import hflip
from adaptive_de.data import load
from adaptive_de.data.labels import LAPA, LabelScheme
from adaptive_de.data.schemes import load_scheme
from adaptive_de.errors import UserError, run_cli
from adaptive_de.losses import reinforce_loss
from adaptive_de.metrics import parsing_scores
from adaptive_de.rewards import get_reward, without_ignored

SCHEME = """\
classes: [background, skin, left_eye, right_eye]
flip_pairs: [[left_eye, right_eye]]
ignore_index: 255
"""

# a module:object scheme for the tests below (this file is importable as tests.test_schemes)
THREE = LabelScheme("three", ("background", "face", "hair"), ignore_index=200)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTIVE_DE_CACHE", str(tmp_path / "cache"))


def make_folder(root: Path, names: list[str], *, classes: int = 4, ignore: int | None = 255, size: int = 8,
                scheme: str | None = SCHEME) -> Path:
    """A flat folder of random images and label maps (ids < ``classes``, a corner of ``ignore``)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"{name}.png")
        label = rng.integers(0, classes, (size, size), dtype=np.uint8)
        if ignore is not None:
            label[:2, :2] = ignore
        Image.fromarray(label).save(root / "labels" / f"{name}.png")
    if scheme is not None:
        (root / "scheme.yaml").write_text(scheme)
    return root


# ---------------------------------------------------------------- scheme files

def test_a_scheme_file_declares_classes_flips_and_the_ignore_id(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCHEME + "remap: {9: 1}\n")
    scheme = load_scheme(path, default_name="mine")
    assert scheme.name == "mine" and scheme.classes == ("background", "skin", "left_eye", "right_eye")
    assert scheme.flip_pairs == ((2, 3),) and scheme.ignore_index == 255 and scheme.remap == ((9, 1),)
    lut = scheme.flip_lut()
    assert lut[2] == 3 and lut[3] == 2 and lut[1] == 1 and lut[255] == 255
    assert load_scheme("lapa") is LAPA
    assert load_scheme("tests.test_schemes:THREE") == THREE  # equal: pytest imports this file twice
    # a mapping of ids gives the same scheme as the list
    path.write_text("classes: {0: background, 1: skin, 2: left_eye, 3: right_eye}\nflip_pairs: [[2, 3]]\n"
                    "ignore_index: 255\n")
    assert load_scheme(path).classes == scheme.classes and load_scheme(path).flip_pairs == ((2, 3),)


BAD_SCHEMES = [
    ("classes: [background, skin]\nflip_pairs: [[skin, nose]]\n", "flip_pairs: unknown class 'nose'"),
    ("classes: [background, skin]\nflip_pairs: [[1, 5]]\n", "flip_pairs: 5 is not a class id"),
    ("classes: {0: background, 1: skin, 1: hair}\n", "duplicate key 1"),
    ("classes: {0: background, 2: skin}\n", "needs the ids 0..1 once each"),
    ("classes: [background, skin, skin]\n", "appear more than once"),
    ("classes: [background, skin]\nignore_index: 1\n", "ignore_index 1 is class 'skin'"),
    ("classes: [background, skin]\nignore_index: 300\n", "ignore_index 300 is outside 0..255"),
    ("classes: [background, skin]\nremap: {7: 4}\n", "remap 7 -> 4: 4 is neither a class id"),
    ("classes: [background, skin]\ncolour: []\n", "unknown key(s) ['colour']"),
    ("flip_pairs: []\n", "missing key 'classes'"),
    ("classes: [background, skin\n", "not valid YAML"),
]


@pytest.mark.parametrize("text, message", BAD_SCHEMES)
def test_every_bad_scheme_file_is_one_error_line_and_exit_2(tmp_path, capsys, text, message):
    from adaptive_de.data.preview import main
    root = make_folder(tmp_path / "faces", ["a", "b"], classes=2, ignore=None, scheme=text)
    assert run_cli(main, [f"folder:{root}", "--split", "all", "--out", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {root / 'scheme.yaml'}: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "p.png").exists()


def test_label_ids_outside_the_scheme_are_one_error_line(tmp_path, capsys):
    from adaptive_de.data.preview import main
    root = make_folder(tmp_path / "faces", ["a", "b"], classes=6, ignore=None)  # ids up to 5, scheme has 4
    assert run_cli(main, [f"folder:{root}", "--split", "all", "--out", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: label map ") and "outside faces (0..3, ignore id 255)" in err
    assert err.count("\n") == 1


def test_remap_is_applied_on_reading(tmp_path):
    root = make_folder(tmp_path / "faces", ["a"], classes=4, ignore=9)  # the file marks unknown pixels 9
    (root / "scheme.yaml").write_text(SCHEME + "remap: {9: 255, 3: 1}\n")
    labels = load(f"folder:{root}", "all").labels
    assert (labels[0, :2, :2] == 255).all() and not (labels == 3).any() and set(labels.unique().tolist()) <= {
        0, 1, 2, 255}


# ---------------------------------------------------------------- folder specs and splits

def test_a_flat_folder_splits_by_ratio_deterministically_and_disjointly(tmp_path):
    root = make_folder(tmp_path / "faces", [f"f{i:02d}" for i in range(20)])
    names = {s: load(f"folder:{root},train=0.6,val=0.2,test=0.2,seed=3", s).names for s in ("train", "val", "test")}
    assert [len(names[s]) for s in ("train", "val", "test")] == [12, 4, 4]
    assert set(names["train"]) | set(names["val"]) | set(names["test"]) == {f"f{i:02d}" for i in range(20)}
    assert load(f"folder:{root},train=0.6,val=0.2,test=0.2,seed=3", "val").names == names["val"]
    assert load(f"folder:{root},train=0.6,val=0.2,test=0.2,seed=4", "val").names != names["val"]
    # default 0.8 / 0.1 / 0.1, and the scheme comes from DIR/scheme.yaml
    data = load(f"folder:{root}", "train")
    assert len(data) == 16 and data.scheme.ignore_index == 255 and data.scheme.name == "faces"


def test_patterns_and_lists_take_their_names_before_the_ratios_share_the_rest(tmp_path):
    names = [f"a_train_{i}" for i in range(8)] + [f"a_test_{i}" for i in range(3)] + ["b_train_0"]
    root = make_folder(tmp_path / "faces", names)
    spec = f"folder:{root},include=a_*,test=a_test_*,train=0.75,val=0.25"
    assert load(spec, "test").names == [f"a_test_{i}" for i in range(3)]
    train, val = load(spec, "train").names, load(spec, "val").names
    assert len(train) == 6 and len(val) == 2 and not set(train) & set(val)
    assert all(n.startswith("a_train_") for n in train + val)  # include= dropped b_train_0
    (tmp_path / "val.txt").write_text("a_train_1\na_train_2.png\n")
    spec = f"folder:{root},val=@{tmp_path / 'val.txt'},test=a_test_*,train=1"
    assert load(spec, "val").names == ["a_train_1", "a_train_2"] and len(load(spec, "train")) == 7


@pytest.mark.parametrize("options, message", [
    ("test=zzz*", "test=zzz* selects no image"),
    ("train=a*,test=a_1*", "is selected by both train and test"),
    ("train=0.9,val=0.3", "sum to at most 1"),
    ("train=0.5,val=0.5", "split 'test' of"),
    ("split=0.5", "bad folder option 'split=0.5'"),
    ("scheme=nowhere.yaml", "scheme file not found: nowhere.yaml"),
    ("scheme=no_such_module:X", "cannot import module 'no_such_module'"),
])
def test_bad_folder_options_name_the_problem(tmp_path, options, message):
    root = make_folder(tmp_path / "faces", ["a_0", "a_1", "a_2"])
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("*", r"\*")):
        load(f"folder:{root},{options}", "test")


def test_a_folder_without_a_scheme_says_how_to_give_one(tmp_path):
    root = make_folder(tmp_path / "faces", ["a"], classes=3, ignore=200, scheme=None)
    with pytest.raises(UserError, match="has no scheme.yaml: write one"):
        load(f"folder:{root}", "all")
    data = load(f"folder:{root},scheme=tests.test_schemes:THREE", "all")
    assert data.scheme == THREE and (data.labels[0, :2, :2] == 200).all()


def test_split_folders_take_their_split_from_the_layout(tmp_path):
    for split in ("train", "val", "test"):
        make_folder(tmp_path / "faces" / split, [f"{split}{i}" for i in range(2)], scheme=None)
    (tmp_path / "faces" / "scheme.yaml").write_text(SCHEME)
    assert load(f"folder:{tmp_path / 'faces'}", "val").names == ["val0", "val1"]
    with pytest.raises(UserError, match="has split folders"):
        load(f"folder:{tmp_path / 'faces'},train=0.5", "train")


# ---------------------------------------------------------------- the ignore id downstream

def test_flips_swap_the_pairs_and_keep_the_ignore_id(tmp_path):
    (tmp_path / "s.yaml").write_text(SCHEME)
    scheme = load_scheme(tmp_path / "s.yaml")
    labels = torch.tensor([[[2, 255, 3, 1]]], dtype=torch.uint8)
    _, flipped = hflip(torch.zeros(1, 3, 1, 4), labels, scheme)
    assert flipped.tolist() == [[[1, 2, 255, 3]]]  # left/right eyes swapped, then mirrored


def test_metrics_skip_ignored_pixels_as_torchmetrics_does():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 4, (3, 16, 16), generator=gen)
    target[:, :4] = 255
    pred = torch.randint(0, 4, (3, 16, 16), generator=gen)
    ours = parsing_scores(pred, target, 4, ignore_index=255)["f1"]
    theirs = multiclass_f1_score(pred, target, num_classes=4, average=None, ignore_index=255)
    assert torch.allclose(ours.float(), theirs, atol=1e-6)
    # the predictions on ignored pixels change nothing
    other = pred.clone()
    other[:, :4] = 3
    assert torch.equal(parsing_scores(other, target, 4, ignore_index=255)["f1"], ours)


@pytest.mark.parametrize("name, params", [("f1_fp", {"fp_norm": "count"}), ("mean_f1", {}), ("miou", {}),
                                          ("dice", {}), ("pq", {})])
def test_rewards_do_not_see_what_is_predicted_on_ignored_pixels(name, params):
    gen = torch.Generator().manual_seed(1)
    target = torch.randint(0, 4, (4, 12, 12), generator=gen)
    target[:, 6:] = 255
    a, b = torch.randint(0, 4, (2, 4, 12, 12), generator=gen)
    b[:, :6] = a[:, :6]  # the same predictions on the scored pixels, different ones on the ignored
    reward = get_reward(name, **params)
    ra, rb = reward(*without_ignored(a, target, 255), 4), reward(*without_ignored(b, target, 255), 4)
    assert torch.equal(ra, rb)
    assert torch.allclose(ra, reward(a[:, :6], target[:, :6], 4))  # the reward of the scored half alone


def test_ignored_pixels_get_no_gradient_in_either_loss_term():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6, 6, requires_grad=True)
    target = torch.randint(0, 4, (2, 6, 6))
    target[:, :, :3] = 255
    loss, info = reinforce_loss(logits, target, get_reward("f1_fp"), num_samples=4, credit="class", ce_weight=1.0,
                                num_classes=4, reduction="sum", generator=torch.Generator().manual_seed(0),
                                ignore_index=255)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad[..., :3].abs().max() == 0 and logits.grad[..., 3:].abs().max() > 0


def test_the_trainer_and_the_population_run_on_a_scheme_with_an_ignore_id(tmp_path):
    """REINFORCE tuning, augmentation that flips, the class-balanced sampler and the population env work
    unchanged on a user scheme whose label maps carry ignored pixels."""
    from adaptive_de.augment import TrivialAugment
    from adaptive_de.config import TrainConfig
    from adaptive_de.trainer import InnerTrainer
    from envs import PopulationEnv

    root = make_folder(tmp_path / "faces", [f"f{i}" for i in range(24)], size=16)
    spec = f"folder:{root},train=0.5,val=0.25,test=0.25"
    trainer = InnerTrainer(TrainConfig(data=spec, image_size=16, batch_size=4, steps=6, loss="ce_then_reinforce",
                                       tune_from=0.5, num_samples=2))
    trainer.sampler.set_coefficients((0.0, 1.0, 0.0))  # class-balanced: counts no ignored pixel
    stats = trainer.train_round(TrivialAugment(scheme=trainer.scheme), steps=6)
    assert np.isfinite(stats["loss"]) and trainer.phase(5) == "reinforce"
    scores = trainer.evaluate("test")
    assert len(scores["f1"]) == 4 and 0.0 <= scores["mean_f1"] <= 1.0
    env = PopulationEnv("smoke", data=spec, image_size=16, members=2, rounds=2, val_subset=3, pretrain_steps=2)
    obs = env.reset()
    obs, rewards, dones, _ = env.step(np.stack([env.action_space.sample() for _ in range(2)]))
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()

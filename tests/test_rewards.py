"""Reward functions: hand-computed values, the seed's binary formula, torchmetrics, plug-ins and validation."""
from __future__ import annotations

import importlib.metadata
import pickle
import textwrap

import pytest
import torch

from adaptive_de import rewards
from adaptive_de.errors import UserError
from adaptive_de.rewards import RewardError, get_reward

# Six 2x3 images with 3 classes (0 = background); the expected values are worked out by hand below.
TARGET = torch.tensor([
    [[0, 1, 1], [2, 2, 0]],  # A
    [[0, 0, 0], [0, 0, 0]],  # B: all background
    [[1, 2, 0], [0, 1, 2]],  # C: predicted perfectly
    [[1, 1, 0], [0, 0, 0]],  # D: class 2 absent from both maps
    [[1, 1, 1], [0, 0, 0]],  # E: class-1 pixels predicted as class 2
    [[1, 1, 0], [2, 0, 0]],  # F: nothing predicted
])
PRED = torch.tensor([
    [[1, 1, 0], [2, 0, 0]],
    [[0, 0, 0], [0, 0, 0]],
    [[1, 2, 0], [0, 1, 2]],
    [[1, 0, 0], [0, 0, 1]],
    [[2, 2, 1], [0, 0, 0]],
    [[0, 0, 0], [0, 0, 0]],
])
# A: class 1 TP=1 FP=1 FN=1 -> F1 1/2; class 2 TP=1 FN=1 -> F1 2/3; FP = 1 pixel
# D: class 1 TP=1 FP=1 FN=1 -> F1 1/2 (class 2 ignored); FP = 1
# E: class 1 TP=1 FN=2 -> 1/2; class 2 TP=0 FP=2 -> 0; FP = 2 (wrong foreground class counts)
# F: class 1 and 2 F1 = 0; FP = 0
MEAN_F1 = [(1 / 2 + 2 / 3) / 2, 1.0, 1.0, 1 / 2, 1 / 4, 0.0]
FP_COUNT = [1, 0, 0, 1, 2, 0]


def test_f1_fp_by_hand_both_normalisations():
    pixels = 6
    expected_pixels = torch.tensor([f - 0.3 * fp / pixels for f, fp in zip(MEAN_F1, FP_COUNT, strict=True)])
    expected_count = torch.tensor([f - 0.5 * fp for f, fp in zip(MEAN_F1, FP_COUNT, strict=True)])
    torch.testing.assert_close(rewards.f1_fp(PRED, TARGET, 3), expected_pixels)
    torch.testing.assert_close(rewards.f1_fp(PRED, TARGET, 3, w=0.5, fp_norm="count"), expected_count)
    torch.testing.assert_close(rewards.mean_f1(PRED, TARGET, 3), torch.tensor(MEAN_F1))


def test_miou_dice_pq_by_hand():
    # A: IoU class 1 = 1/3, class 2 = 1/2; foreground union: |P|=3, |T|=4, |P&T|=2
    torch.testing.assert_close(rewards.miou(PRED[:3], TARGET[:3], 3), torch.tensor([(1 / 3 + 1 / 2) / 2, 1.0, 1.0]))
    torch.testing.assert_close(rewards.dice(PRED[:3], TARGET[:3], 3), torch.tensor([4 / 7, 1.0, 1.0]))
    # A: no class has IoU > 0.5, so both predicted segments are false positives.
    # G: class 1 IoU 2/3 matches, class 2 IoU 1/2 does not: (2/3) / 2 target segments - 0.3 * 1/2 predicted.
    g_target = torch.tensor([[[1, 1, 1], [2, 2, 0]]])
    g_pred = torch.tensor([[[1, 1, 0], [2, 0, 0]]])
    torch.testing.assert_close(
        rewards.pq(torch.cat([PRED[:3], g_pred]), torch.cat([TARGET[:3], g_target]), 3),
        torch.tensor([-0.3, 1.0, 1.0, (2 / 3) / 2 - 0.3 / 2]),
    )


def _seed_reward(pred: torch.Tensor, label: torch.Tensor, w: float) -> float:
    """The seed's binary_f1_score reward for one image, with F1 = 2 / (1/precision + 1/recall)."""
    pred, label = pred.float(), label.float()
    tp = (pred * label).sum()
    fp = (pred * (1 - label)).sum()
    fn = ((1 - pred) * label).sum()
    precision = tp / (tp + fp + 1e-6)
    recall = tp / (tp + fn + 1e-6)
    f1 = 2 / (1 / precision + 1 / recall)
    return float(f1 - w * fp)


def test_f1_fp_count_matches_seed_formula_per_image():
    gen = torch.Generator().manual_seed(0)
    target = (torch.rand(8, 16, 16, generator=gen) < 0.4).long()
    pred = torch.where(torch.rand(8, 16, 16, generator=gen) < 0.3, 1 - target, target)
    pred[3] = 0  # no positive predicted: F1 0
    got = rewards.f1_fp(pred, target, 2, fp_norm="count")
    expected = torch.tensor([_seed_reward(p, t, 0.3) for p, t in zip(pred, target, strict=True)])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_mean_f1_matches_torchmetrics_per_image():
    from torchmetrics.functional.classification import multiclass_f1_score

    gen = torch.Generator().manual_seed(1)
    c = 5
    target = torch.randint(0, c - 1, (4, 12, 12), generator=gen)  # class 4 never in the target
    pred = torch.where(torch.rand(4, 12, 12, generator=gen) < 0.7, target, torch.randint(0, c, (4, 12, 12)))
    pred[0][pred[0] == 4] = 0  # image 0: class 4 absent from both maps
    expected = []
    for p, t in zip(pred, target, strict=True):
        per_class = multiclass_f1_score(p.flatten(), t.flatten(), num_classes=c, average=None)
        present = [k for k in range(1, c) if (p == k).any() or (t == k).any()]
        expected.append(per_class[present].mean())
    torch.testing.assert_close(rewards.mean_f1(pred, target, c), torch.stack(expected))


def test_out_of_range_labels_are_rejected():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        rewards.confusion_matrices(PRED, TARGET + 1, 3)


def test_get_reward_binds_params_and_names_itself():
    reward = get_reward("f1_fp", w=0.5, fp_norm="count")
    assert reward.__name__ == "f1_fp(w=0.5, fp_norm='count')"
    assert repr(reward) == "get_reward('f1_fp', w=0.5, fp_norm='count')"
    torch.testing.assert_close(reward(PRED, TARGET, 3), rewards.f1_fp(PRED, TARGET, 3, w=0.5, fp_norm="count"))
    assert {"f1_fp", "mean_f1", "miou", "dice", "pq"} <= set(rewards.REWARDS)
    assert pickle.loads(pickle.dumps(reward)).__name__ == reward.__name__  # subprocess envs pickle it


@pytest.mark.parametrize(
    ("name", "low"), [("f1_fp", -0.3), ("mean_f1", 0.0), ("miou", 0.0), ("dice", 0.0), ("pq", -0.3)]
)
def test_builtin_ranges_on_random_maps(name, low):
    gen = torch.Generator().manual_seed(2)
    target = torch.randint(0, 4, (16, 10, 10), generator=gen)
    pred = torch.where(torch.rand(16, 10, 10, generator=gen) < 0.5, target, torch.randint(0, 4, (16, 10, 10)))
    value = get_reward(name)(torch.cat([pred, target]), torch.cat([target, target]), 4)
    assert (value >= low).all() and (value <= 1).all()
    torch.testing.assert_close(value[16:], torch.ones(16))  # perfect predictions score 1


def test_get_reward_user_errors():
    with pytest.raises(UserError, match="unknown reward 'nope'.*f1_fp"):
        get_reward("nope")
    with pytest.raises(UserError, match="f1_fp"):
        get_reward("f1_fp", bogus=1)
    with pytest.raises(UserError, match="no_such_module_for_adaptive_de"):
        get_reward("no_such_module_for_adaptive_de:fn")
    with pytest.raises(UserError, match="fp_norm"):
        get_reward("f1_fp", fp_norm="area")(PRED, TARGET, 3)


PLUGIN = textwrap.dedent("""
    import torch

    def accuracy(pred, target, num_classes, *, scale=1.0):
        return scale * (pred == target).float().mean((1, 2))

    def wrong_shape(pred, target, num_classes):
        return torch.zeros(pred.shape[0], 1)

    def int_dtype(pred, target, num_classes):
        return torch.zeros(pred.shape[0], dtype=torch.long)

    def nan(pred, target, num_classes):
        return torch.full((pred.shape[0],), float("nan"))

    def inf(pred, target, num_classes):
        return torch.full((pred.shape[0],), float("inf"))

    def not_tensor(pred, target, num_classes):
        return [0.0] * pred.shape[0]
""")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An importable module ``adaptive_de_test_plugin`` with a few reward functions."""
    (tmp_path / "adaptive_de_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "adaptive_de_test_plugin", raising=False)
    return "adaptive_de_test_plugin"


def test_module_function_plugin_with_bound_params(plugin):
    reward = get_reward(f"{plugin}:accuracy", scale=2.0)
    expected = 2.0 * (PRED == TARGET).float().mean((1, 2))
    torch.testing.assert_close(reward(PRED, TARGET, 3), expected)
    assert reward.__name__ == f"{plugin}:accuracy(scale=2.0)"
    with pytest.raises(UserError, match="has no attribute"):
        get_reward(f"{plugin}:missing")


def test_entry_point_plugin(plugin, monkeypatch):
    published = [importlib.metadata.EntryPoint("acc", f"{plugin}:accuracy", rewards.ENTRY_POINT_GROUP)]

    def fake_entry_points(*, group):
        return published if group == rewards.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    reward = get_reward("acc", scale=3.0)
    torch.testing.assert_close(reward(PRED, TARGET, 3), 3.0 * (PRED == TARGET).float().mean((1, 2)))
    with pytest.raises(UserError, match="acc"):  # the unknown-name message lists published names too
        get_reward("neither")


@pytest.mark.parametrize(
    ("name", "problem"),
    [("wrong_shape", "shape"), ("int_dtype", "dtype"), ("nan", "NaN"), ("inf", "inf"), ("not_tensor", "list")],
)
def test_bad_reward_outputs_name_the_reward(plugin, name, problem):
    reward = get_reward(f"{plugin}:{name}")
    with pytest.raises(RewardError, match=problem) as excinfo:
        reward(PRED, TARGET, 3)
    assert f"{plugin}:{name}" in str(excinfo.value)
    assert isinstance(excinfo.value, UserError)

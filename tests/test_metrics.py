"""Pooled confusion-matrix scores for face parsing."""
import math

import pytest
import torch
from torchmetrics.functional.classification import multiclass_f1_score, multiclass_jaccard_index

from adaptive_de.metrics import ConfusionAccumulator, confusion_matrix, parsing_scores, scores_from_confusion

# A 2x4 example over 3 classes, scored by hand below.
TARGET = torch.tensor([[[0, 0, 1, 1], [2, 2, 2, 0]]])
PRED = torch.tensor([[[0, 1, 1, 1], [2, 2, 0, 2]]])


def test_hand_computed_example():
    cm = confusion_matrix(PRED, TARGET, 3)
    # rows = target, cols = prediction
    assert cm.tolist() == [[1, 1, 1], [0, 2, 0], [1, 0, 2]]
    s = parsing_scores(PRED, TARGET, 3)
    # class 1: TP 2, FP 1, FN 0 -> 4/5; class 2: TP 2, FP 1, FN 1 -> 4/6; class 0: TP 1, FP 1, FN 2 -> 2/5
    assert torch.allclose(s["f1"], torch.tensor([2 / 5, 4 / 5, 4 / 6], dtype=torch.float64))
    assert torch.allclose(s["iou"], torch.tensor([1 / 4, 2 / 3, 2 / 4], dtype=torch.float64))
    assert s["mean_f1"] == pytest.approx((4 / 5 + 4 / 6) / 2)
    # foreground false positives: one 0 -> 1, one 0 -> 2 among 8 pixels
    assert s["fp_rate"] == pytest.approx(2 / 8)
    assert s["pixel_acc"] == pytest.approx(5 / 8)


def test_perfect_prediction():
    t = torch.randint(0, 5, (3, 7, 7))
    s = parsing_scores(t, t, 5)
    assert s["mean_f1"] == pytest.approx(1.0) and s["fp_rate"] == 0.0 and s["pixel_acc"] == 1.0


def test_matches_torchmetrics():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 11, (4, 16, 16), generator=g)
    pred = torch.where(torch.rand(4, 16, 16, generator=g) < 0.6, target, torch.randint(0, 11, (4, 16, 16), generator=g))
    s = parsing_scores(pred, target, 11)
    f1 = multiclass_f1_score(pred, target, num_classes=11, average="none")
    iou = multiclass_jaccard_index(pred, target, num_classes=11, average="none")
    assert torch.allclose(s["f1"].float(), f1, atol=1e-6)
    assert torch.allclose(s["iou"].float(), iou, atol=1e-6)
    assert s["mean_f1"] == pytest.approx(f1[1:].mean().item(), abs=1e-6)


def test_absent_class_is_nan_and_excluded_from_mean():
    target = torch.tensor([[0, 1, 1, 3]])
    pred = torch.tensor([[0, 1, 3, 3]])
    s = parsing_scores(pred, target, 4)
    assert math.isnan(s["f1"][2]) and math.isnan(s["iou"][2])
    assert s["mean_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_streaming_equals_one_call_on_the_concatenation():
    g = torch.Generator().manual_seed(1)
    preds = [torch.randint(0, 6, (n, 8, 8), generator=g) for n in (1, 3, 2)]
    targets = [torch.randint(0, 6, (n, 8, 8), generator=g, dtype=torch.uint8) for n in (1, 3, 2)]
    acc = ConfusionAccumulator(6, device="cpu")
    for p, t in zip(preds, targets, strict=True):
        acc.update(p, t)
    want = parsing_scores(torch.cat(preds), torch.cat(targets), 6)
    got = acc.compute()
    assert torch.equal(acc.confusion, confusion_matrix(torch.cat(preds), torch.cat(targets), 6))
    for key in ("mean_f1", "fp_rate", "pixel_acc"):
        assert got[key] == pytest.approx(want[key])
    assert torch.allclose(got["f1"], want["f1"], equal_nan=True)
    acc.reset()
    assert int(acc.confusion.sum()) == 0


def test_scores_from_confusion_accepts_any_integer_matrix():
    cm = torch.tensor([[5, 0], [1, 4]], dtype=torch.int32)
    s = scores_from_confusion(cm)
    assert s["f1"][1].item() == pytest.approx(8 / 9)


@pytest.mark.parametrize(("pred", "target"), [
    (torch.tensor([0, 1]), torch.tensor([0, 3])),  # target id too large
    (torch.tensor([0, 1]), torch.tensor([-1, 0])),  # negative target id
    (torch.tensor([0, 1]), torch.tensor([0, 1, 2])),  # shape mismatch
    (torch.tensor([0.0, 1.0]), torch.tensor([0, 1])),  # float logits/probabilities instead of ids
])
def test_bad_inputs_raise_value_error(pred, target):
    with pytest.raises(ValueError):
        confusion_matrix(pred, target, 3)

"""Face-parsing scores from one confusion matrix pooled over every pixel (the FaRL / DML-CSR protocol).

Pooling matters: per-class F1 is computed once over all pixels of the evaluated set, not
averaged over images. ``mean_f1`` averages every class except background (id 0).

A class absent from both target and prediction has F1 = IoU = 0/0; it is reported as NaN
and left out of ``mean_f1``: there was nothing to find and nothing was wrongly found, so
it should neither reward nor punish the model. (torchmetrics reports 0 there.)
"""
from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = None) -> torch.Tensor:
    """Count pixels by (target class, predicted class): int64 [C, C], rows = target, cols = prediction.

    ``pred`` and ``target`` are integer tensors of the same shape, on any device; the result is on that device.
    Pixels whose target is ``ignore_index`` are not counted. Raises ``ValueError`` for mismatched shapes or
    class ids outside [0, num_classes).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError("pred and target must hold integer class ids (take argmax of the logits first)")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if target.numel():
        # One device sync for all four bounds.
        t_min, t_max, p_min, p_max = torch.stack([target.min(), target.max(), pred.min(), pred.max()]).tolist()
        if t_min < 0 or t_max >= num_classes:
            raise ValueError(f"target holds class ids in [{t_min}, {t_max}], outside [0, {num_classes})")
        if p_min < 0 or p_max >= num_classes:
            raise ValueError(f"pred holds class ids in [{p_min}, {p_max}], outside [0, {num_classes})")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes)


def scores_from_confusion(cm: torch.Tensor) -> dict:
    """Scores from a [C, C] confusion matrix (rows = target). Returned on the CPU.

    Keys: ``f1`` and ``iou`` (per-class float64 tensors [C], NaN for classes absent from
    target and prediction), ``mean_f1`` (nan-mean of ``f1[1:]``; NaN if no foreground
    class occurs), ``fp_rate`` (pixels predicted as a foreground class they do not belong
    to, over all pixels) and ``pixel_acc``.
    """
    cm = cm.detach().cpu().double()
    tp = cm.diagonal()
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    total = cm.sum()
    # 0/0 gives NaN by IEEE division, which is exactly the "absent class" marker wanted here.
    f1 = 2 * tp / (2 * tp + fp + fn)
    iou = tp / (tp + fp + fn)
    return {
        "f1": f1,
        "mean_f1": float(f1[1:].nanmean()),
        "fp_rate": float(fp[1:].sum() / total),
        "iou": iou,
        "pixel_acc": float(tp.sum() / total),
    }


def parsing_scores(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                   ignore_index: int | None = None) -> dict:
    """Scores of predicted class ids against the target, pooled over all pixels but those whose target is
    ``ignore_index``; see ``scores_from_confusion``."""
    return scores_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


class ConfusionAccumulator:
    """Streaming form of ``parsing_scores``: ``update`` per batch, ``compute`` once, ``reset`` between evaluations."""

    def __init__(self, num_classes: int, device: torch.device | str = "cpu", ignore_index: int | None = None):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        device = self.confusion.device
        self.confusion += confusion_matrix(pred.to(device), target.to(device), self.num_classes,
                                           self.ignore_index)

    def compute(self) -> dict:
        return scores_from_confusion(self.confusion)

    def reset(self) -> None:
        self.confusion.zero_()

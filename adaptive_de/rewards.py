"""Per-image task rewards for face parsing, and the registry that names them.

A reward function maps ``(pred, target, num_classes)`` -- int64 label maps ``[B, H, W]`` and the
number of classes (class 0 is background) -- to a float tensor ``[B]``, one reward per image, on
the inputs' device. The built-ins are vectorised over the batch: one scatter-add gives every
image's confusion matrix and everything else is arithmetic on those ``[B, C, C]`` counts.
Pixels that a label scheme ignores reach a reward as background in both maps (``without_ignored``):
the built-ins count foreground only, so they skip those pixels; a plug-in that scores background
pixels too should know.

``get_reward(spec, **params)`` turns a name into such a callable with its parameters bound:

* a name registered with ``@register_reward("name")`` (built-ins: ``f1_fp``, ``mean_f1``,
  ``miou``, ``dice``, ``pq``);
* ``"package.module:function"``, imported on demand;
* a name that an installed package publishes under the entry-point group ``adaptive_de.rewards``,
  e.g. in its ``pyproject.toml``: ``[project.entry-points."adaptive_de.rewards"] my_reward =
  "my_pkg.rewards:my_reward"``.

The returned callable checks what the reward gives back (one finite float per image) and raises
``RewardError`` naming the reward otherwise.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .errors import UserError
from .plugins import import_object

RewardFn = Callable[..., Tensor]

ENTRY_POINT_GROUP = "adaptive_de.rewards"

REWARDS: dict[str, RewardFn] = {}
CLASS_TERMS: dict[RewardFn, RewardFn] = {}  # a reward function -> its per-class split


class RewardError(UserError):
    """A reward function returned something other than one finite float per image."""


def register_reward(name: str, class_terms: RewardFn | None = None) -> Callable[[RewardFn], RewardFn]:
    """Decorator: register ``fn(pred, target, num_classes, **params) -> float [B]`` under ``name``.

    ``class_terms(pred, target, num_classes, **params) -> float [B, C]``, optional, splits the reward by
    class (the columns sum to the reward); REINFORCE's per-class credit needs it.
    """

    def decorator(fn: RewardFn) -> RewardFn:
        if REWARDS.get(name, fn) is not fn:
            raise ValueError(f"a reward named {name!r} is already registered ({REWARDS[name]!r})")
        REWARDS[name] = fn
        if class_terms is not None:
            CLASS_TERMS[fn] = class_terms
        return fn

    return decorator


# --------------------------------------------------------------------------------------------
# Per-image confusion matrices and the built-in rewards
# --------------------------------------------------------------------------------------------


def confusion_matrices(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Per-image confusion matrices: int64 ``[B, C, C]`` with ``cm[b, t, p]`` = #pixels of class t predicted p.

    ``pred`` and ``target`` are integer label maps ``[B, H, W]`` with values in ``[0, num_classes)``.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be [B, H, W]; got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError(f"pred and target must be integer label maps; got {pred.dtype} and {target.dtype}")
    c, b = num_classes, pred.shape[0]
    # An out-of-range label would silently land in another image's bins. On the CPU the check costs nothing
    # and gives a readable error; on a GPU reading the bounds would stall every training step, so the
    # device asserts them itself.
    lo_p, hi_p = torch.aminmax(pred)
    lo_t, hi_t = torch.aminmax(target)
    lo, hi = torch.minimum(lo_p, lo_t), torch.maximum(hi_p, hi_t)
    if pred.device.type == "cpu":
        if lo < 0 or hi >= c:
            raise ValueError(f"labels must lie in [0, {c}); found values in [{int(lo)}, {int(hi)}]")
    else:
        torch._assert_async((lo >= 0) & (hi < c), f"labels must lie in [0, {c})")
    index = torch.add(pred.long(), target.long(), alpha=c)
    index += torch.arange(0, b * c * c, c * c, device=pred.device).view(b, 1, 1)
    index = index.flatten()
    # scatter_add_, not bincount: a CUDA bincount reads its input's maximum on the host
    return index.new_zeros(b * c * c).scatter_add_(0, index, torch.ones_like(index)).view(b, c, c)


def _foreground_counts(pred: Tensor, target: Tensor, num_classes: int) -> tuple[Tensor, Tensor, Tensor]:
    """float32 ``[B, C-1]`` true positives, false positives and false negatives of each foreground class."""
    cm = confusion_matrices(pred, target, num_classes).float()
    tp = cm.diagonal(dim1=1, dim2=2)
    fp = cm.sum(1) - tp
    fn = cm.sum(2) - tp
    return tp[:, 1:], fp[:, 1:], fn[:, 1:]


def _mean_over_present(score: Tensor, present: Tensor) -> Tensor:
    """Mean of ``score [B, K]`` over the entries where ``present``; 1.0 for an image with none present."""
    count = present.sum(1)
    mean = (score * present).sum(1) / count.clamp(min=1)
    return torch.where(count > 0, mean, torch.ones_like(mean))


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    # The counts are integers, so den > 0 means den >= 1 and clamping only touches the 0/0 entries.
    return num / den.clamp(min=1)


def f1_fp_terms(pred: Tensor, target: Tensor, num_classes: int, *, w: float = 0.3,
                fp_norm: str = "pixels") -> Tensor:
    """``f1_fp`` split by class: float ``[B, C]`` whose sum over classes is ``f1_fp``.

    Column c >= 1 holds class c's share of the mean F1 (its F1 over the number of classes present in the
    image) minus ``w`` times its false positives; column 0 holds the 1.0 of an image with no foreground
    in either map. REINFORCE's per-class credit (``credit="class"``) takes a baseline per column.
    """
    if fp_norm not in ("pixels", "count"):
        raise UserError(f"f1_fp: fp_norm must be 'pixels' or 'count', not {fp_norm!r}")
    tp, fp, fn = _foreground_counts(pred, target, num_classes)
    den = 2 * tp + fp + fn
    present = den > 0
    count = present.sum(1, keepdim=True)
    f1_share = _ratio(2 * tp, den) * present / count.clamp(min=1)
    false_pos = fp / (pred.shape[1] * pred.shape[2]) if fp_norm == "pixels" else fp
    empty = (count == 0).to(f1_share.dtype)
    return torch.cat([empty, f1_share - w * false_pos], 1)


@register_reward("f1_fp", class_terms=f1_fp_terms)
def f1_fp(pred: Tensor, target: Tensor, num_classes: int, *, w: float = 0.3, fp_norm: str = "pixels") -> Tensor:
    """Mean foreground F1 minus ``w`` times the false positives, per image.

    F1 of class c is ``2TP / (2TP + FP + FN)``; the mean runs over the foreground classes (ids >= 1)
    present in the target or the prediction of that image, and is 1.0 when neither has any foreground.
    FP counts the pixels predicted as a foreground class they do not belong to; ``fp_norm="pixels"``
    divides it by the image's pixel count (so the reward lies in ``[-w, 1]``), ``"count"`` keeps the raw
    count. With two classes and ``fp_norm="count"`` this is the seed's reward, computed per image: F1 of
    the positive class minus ``w * FP`` (except that an image with no positive pixel in either map
    scores 1.0 here, where the seed's epsilon-guarded formula gives 0).
    """
    return f1_fp_terms(pred, target, num_classes, w=w, fp_norm=fp_norm).sum(1)


def _mean_f1_terms(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    return f1_fp_terms(pred, target, num_classes, w=0.0)


@register_reward("mean_f1", class_terms=_mean_f1_terms)
def mean_f1(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Mean foreground F1 per image: ``f1_fp`` with ``w=0``."""
    return f1_fp(pred, target, num_classes, w=0.0)


@register_reward("miou")
def miou(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Mean IoU ``TP / (TP + FP + FN)`` over the foreground classes present in target or prediction (1.0 if none)."""
    tp, fp, fn = _foreground_counts(pred, target, num_classes)
    den = tp + fp + fn
    return _mean_over_present(_ratio(tp, den), den > 0)


@register_reward("dice")
def dice(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Binary Dice of the face region: ``pred >= 1`` against ``target >= 1``, per image (1.0 if both are empty).

    Per-class Dice equals per-class F1, so a class-averaged Dice would only repeat ``mean_f1``; this
    one scores the foreground/background split and ignores which face class a pixel gets.
    """
    cm = confusion_matrices(pred, target, num_classes).float()
    both = cm[:, 1:, 1:].sum((1, 2))
    den = cm[:, :, 1:].sum((1, 2)) + cm[:, 1:, :].sum((1, 2))
    score = _ratio(2 * both, den)
    return torch.where(den > 0, score, torch.ones_like(score))


@register_reward("pq")
def pq(pred: Tensor, target: Tensor, num_classes: int, *, w: float = 0.3) -> Tensor:
    """A panoptic-quality-style reward after Pinto et al. (2023), normalised to ``[-w, 1]``.

    Each foreground class present in a map is one segment ("semantic" segments: one per class per
    image). A predicted segment matches the target segment of its class when their IoU > 0.5. Per image::

        reward = sum(IoU of matched segments) / max(1, #target segments)
                 - w * #unmatched predicted segments / max(1, #predicted segments)

    and 1.0 when neither map has any foreground. With TP/FP/FN counted in segments, the first term is
    ``sum IoU / (TP + FN)`` (segmentation quality times recall) and the second is ``w * FP / (TP + FP)``
    (``w`` times one minus precision), whereas ``PQ = sum IoU / (TP + FP/2 + FN/2)``; when every segment
    matches (FP = FN = 0) both equal the mean IoU of the matched segments. Pinto et al.'s unnormalised
    ``sum IoU - w * FP`` grows with the number of segments; dividing by the counts keeps one image's
    reward on the same scale whatever the number of face parts it shows.
    """
    tp, fp, fn = _foreground_counts(pred, target, num_classes)
    has_pred = (tp + fp) > 0
    has_target = (tp + fn) > 0
    iou = _ratio(tp, tp + fp + fn)
    matched = iou > 0.5
    n_target = has_target.sum(1)
    n_pred = has_pred.sum(1)
    quality = _ratio((iou * matched).sum(1), n_target)
    unmatched = _ratio((has_pred & ~matched).sum(1).float(), n_pred)
    reward = quality - w * unmatched
    return torch.where(n_target + n_pred > 0, reward, torch.ones_like(reward))


# --------------------------------------------------------------------------------------------
# Lookup, parameter binding and output validation
# --------------------------------------------------------------------------------------------


class Reward:
    """A reward function with its parameters bound, checking that it returns one finite float per image.

    Call it as ``reward(pred, target, num_classes)``. ``__name__`` reads like ``f1_fp(w=0.5)``.
    Picklable when the underlying function is importable (all built-ins and plug-ins are).
    """

    def __init__(self, spec: str, fn: RewardFn, params: dict[str, Any]):
        self.spec = spec
        self.fn = fn
        self.params = dict(params)
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        self.__name__ = f"{spec}({args})" if args else spec
        if fn in CLASS_TERMS:
            self.class_terms = self._class_terms  # present only where the reward has a per-class split

    def _class_terms(self, pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
        """The reward split by class, float ``[B, C]`` (the columns sum to ``self(...)``)."""
        return CLASS_TERMS[self.fn](pred, target, num_classes, **self.params)

    def __call__(self, pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
        reward = self.fn(pred, target, num_classes, **self.params)
        check_reward_output(reward, pred, self.__name__)
        return reward

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"get_reward({self.spec!r}{args})"


def without_ignored(pred: Tensor, target: Tensor, ignore_index: int | None) -> tuple[Tensor, Tensor]:
    """``pred`` and ``target`` with the pixels whose target is ``ignore_index`` set to background in both.

    Every reward is a function of foreground counts (true/false positives, false negatives of classes
    >= 1), to which a background-background pixel adds nothing: so a reward of these maps scores the
    other pixels only, whatever the reward, and without a host sync.
    """
    if ignore_index is None:
        return pred, target
    ignored = target == ignore_index
    return pred.masked_fill(ignored, 0), target.masked_fill(ignored, 0)


def check_reward_output(reward: Any, pred: Tensor, name: str) -> None:
    """Raise ``RewardError`` unless ``reward`` is a float tensor ``[B]`` on ``pred``'s device, finite on the CPU.

    Off the CPU, finiteness is left to whoever reads the values (the trainer's round and ``evaluate`` check
    their sums with ``check_reward_sum``): counting non-finite entries here would make the host wait.
    """
    batch = pred.shape[0]
    if not isinstance(reward, Tensor):
        raise RewardError(f"reward {name} returned {type(reward).__name__}, expected a float tensor of shape [{batch}]")
    if tuple(reward.shape) != (batch,):
        raise RewardError(f"reward {name} returned shape {list(reward.shape)}, expected [{batch}] (one per image)")
    if not reward.is_floating_point():
        raise RewardError(f"reward {name} returned dtype {reward.dtype}, expected a floating-point dtype")
    if reward.device != pred.device:
        raise RewardError(f"reward {name} returned a tensor on {reward.device}, expected {pred.device}")
    bad = int((~torch.isfinite(reward)).sum()) if reward.device.type == "cpu" else 0
    if bad:
        raise RewardError(f"reward {name} returned NaN or inf for {bad} of {batch} images")


def check_reward_sum(total: float, reward_fn: Callable, where: str) -> None:
    """Raise ``RewardError`` if ``total``, a sum of ``reward_fn``'s values read back from the device, is NaN
    or inf: the check ``check_reward_output`` leaves to the reader off the CPU. ``where`` ends the message."""
    if not math.isfinite(total):
        name = getattr(reward_fn, "__name__", repr(reward_fn))
        raise RewardError(f"reward {name} returned NaN or inf {where}")


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _resolve(spec: str) -> RewardFn:
    if spec in REWARDS:
        return REWARDS[spec]
    if ":" in spec:
        return import_object(spec, "reward")
    published = _entry_points()
    if spec in published:
        try:
            return published[spec].load()
        except Exception as e:  # same as a failing plug-in import
            raise UserError(
                f"reward {spec!r}: cannot load entry point {published[spec].value!r} ({type(e).__name__}: {e})"
            ) from None
    known = ", ".join(sorted(set(REWARDS) | set(published)))
    raise UserError(f"unknown reward {spec!r}; choose one of: {known}, or give 'package.module:function'")


def get_reward(spec: str, **params: Any) -> Reward:
    """The reward named by ``spec`` with ``params`` bound as keyword arguments, wrapped in output validation.

    ``spec`` is a registered name, ``"package.module:function"`` or an entry point of the group
    ``adaptive_de.rewards`` (looked up in that order). Raises ``UserError`` for an unknown spec, a
    module that fails to import, or parameters the function does not accept.
    """
    fn = _resolve(spec)
    if not callable(fn):
        raise UserError(f"reward {spec!r} is a {type(fn).__name__}, not a function")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some C callables have no signature; they get checked when called
        signature = None
    if signature is not None:
        try:
            signature.bind_partial(None, None, None, **params)
        except TypeError as e:
            raise UserError(f"reward {spec!r} does not accept (pred, target, num_classes, **{params}): {e}") from None
    return Reward(spec, fn, params)

"""REINFORCE loss for segmentation: tune a parsing model directly on a per-image task reward.

After Pinto et al. (2023), "Tuning computer vision models with task rewards": the model's per-pixel
distribution is a policy over whole label maps; K label maps are sampled from one forward pass, each
is scored by the task reward (e.g. ``f1_fp``), and ``-advantage * log p(sample)`` pushes probability
towards the samples that beat their baseline. Start from a cross-entropy model and keep dropout off
while sampling (call the model in eval mode, or without dropout, to produce ``logits``).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..rewards import without_ignored

BASELINES = ("rloo", "pair", "greedy", "none")
REDUCTIONS = ("mean", "sum")
CREDITS = ("image", "class")


def sample_labels(probs: Tensor, num_samples: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``num_samples`` label maps from per-pixel categoricals: int64 ``[K, B, H, W]`` from probs ``[B, C, H, W]``.

    Inverse-CDF sampling needs one uniform per sampled pixel instead of one per class (Gumbel-max),
    which makes it several times cheaper than Gumbel-max or ``torch.multinomial`` here.
    """
    b, c, h, w = probs.shape
    u = torch.rand((num_samples, b, h, w), device=probs.device, generator=generator)
    # The sampled class is the number of cumulative probabilities that u reaches. Building the CDF one class
    # at a time avoids a strided cumsum and a [K, B, C, H, W] comparison; the bool -> uint8 view avoids a cast.
    accumulate = torch.uint8 if c <= 256 else torch.long
    cdf = probs[:, 0].clone()
    samples = (u >= cdf).to(accumulate)
    for k in range(1, c - 1):
        cdf += probs[:, k]
        samples += (u >= cdf).view(torch.uint8) if accumulate == torch.uint8 else (u >= cdf)
    return samples.long()


def advantages(rewards: Tensor, baseline: str, greedy_rewards: Tensor | None = None) -> Tensor:
    """Advantages ``[K, B]`` of the rewards ``[K, B]`` of K samples of B images (not divided by a std).

    * ``rloo``: ``A_i = R_i - mean_{j != i} R_j`` (needs K >= 2).
    * ``pair``: samples are paired (0, 1), (2, 3), ...; the first of a pair gets ``R_first - R_second``
      and the second is only its baseline (advantage 0). With odd K the last sample is paired with
      sample 0 (an independent draw, so still unbiased). With K = 2 this is the seed's step exactly.
    * ``greedy``: ``A_i = R_i - R_greedy``, the reward of the argmax prediction (self-critical).
    * ``none``: ``A_i = R_i``.
    """
    k = rewards.shape[0]
    if baseline == "rloo":
        return rewards - (rewards.sum(0, keepdim=True) - rewards) / (k - 1)
    if baseline == "pair":
        adv = torch.zeros_like(rewards)
        partner = torch.arange(1, k + 1, 2, device=rewards.device) % k  # the sample after each even one, wrapping to 0
        adv[0::2] = rewards[0::2] - rewards[partner]
        return adv
    if baseline == "greedy":
        if greedy_rewards is None:
            raise ValueError("baseline 'greedy' needs greedy_rewards")
        return rewards - greedy_rewards.unsqueeze(0)
    if baseline == "none":
        return rewards
    raise ValueError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")


def pixel_credit(adv: Tensor, samples: Tensor, target: Tensor) -> Tensor:
    """Per-pixel advantages ``[K, B, H, W]`` from per-class advantages ``adv`` ``[K, B, C]`` (``credit="class"``).

    A pixel sampled as class s with target t only changes the counts of s and t (a true positive of s
    when s == t, else a false positive of s and a false negative of t), so it is credited with
    ``A_s + A_t`` (``A_s`` once when s == t). The other classes' terms do not depend on this pixel's
    sample except through "had it been sampled as c", whose expected contribution is the class's reward
    difference for that one pixel; with a per-class baseline those terms are close to zero, so dropping
    them removes most of the variance at almost no bias.
    """
    k, b, c = adv.shape
    flat = adv.reshape(k * b, c)
    sampled = flat.gather(1, samples.reshape(k * b, -1)).view_as(samples)
    target_k = target.unsqueeze(0).expand_as(samples)
    wrong = samples != target_k
    missed = flat.gather(1, target_k.reshape(k * b, -1)).view_as(samples)
    return sampled + missed * wrong


def reinforce_loss(
    logits: Tensor,
    target: Tensor,
    reward_fn: Callable[[Tensor, Tensor, int], Tensor],
    *,
    num_samples: int = 2,
    baseline: str = "rloo",
    reduction: str = "mean",
    credit: str = "image",
    reward_weight: float = 1.0,
    temperature: float = 1.0,
    entropy_weight: float = 0.0,
    ce_weight: float = 0.0,
    num_classes: int | None = None,
    generator: torch.Generator | None = None,
    ignore_index: int | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """REINFORCE loss of a per-pixel policy on a per-image reward; returns ``(loss, info)``.

    ``logits`` ``[B, 1, H, W]`` is a Bernoulli policy over binary masks (classes {0, 1}, the seed's
    case); ``[B, C, H, W]`` with C >= 2 a per-pixel Categorical. ``target`` is int ``[B, H, W]``.
    ``num_samples`` (K) label maps are drawn from these logits (one forward pass), in float32 whatever
    the logits' dtype, and scored by one call ``reward_fn(samples [K*B, H, W], target, num_classes)``
    (sample k of image b at row ``k*B + b``; with ``greedy`` the B argmax maps are appended to the same
    call). Sampling and rewards carry no gradient. The loss is::

        -reward_weight * mean_samples(reduce_pixels(A * log p(sample)))
        - entropy_weight * entropy + ce_weight * cross_entropy

    * ``reduction``: ``"mean"`` averages the log-probability over pixels (the seed's choice, which makes
      the reward term's gradient about 1/H*W of a whole-mask likelihood's); ``"sum"`` is the whole
      label map's log-likelihood, the exact REINFORCE gradient of the expected reward.
    * ``credit``: ``"image"`` gives every pixel of a sample its image's advantage A (from
      ``advantages``); ``"class"`` scores the reward per class (``reward_fn.class_terms``, whose sum
      over classes is the reward), takes a baseline per class and credits each pixel with the
      advantages of the classes it touches (``pixel_credit``).
    * ``temperature``: the policy is ``softmax(logits / temperature)``; below 1 its samples lie closer to
      the greedy (argmax) map that evaluation scores, so the reward it raises is nearer the evaluated one.
      The cross-entropy term always uses the logits as they are.
    * ``ignore_index``: target pixels of unknown class; they get no gradient from either term, and the
      reward sees them as background in both maps (``rewards.without_ignored``).
    * ``reward_weight = 0`` skips sampling: the loss is then cross-entropy alone (the control arm that
      shares the tuning schedule).

    The mean over samples runs over those that get a gradient (for ``pair`` only the first of each
    pair, so K = 2, ``mean``, ``image`` reproduces the seed's loss). ``num_classes`` defaults to C (2 for
    the Bernoulli case). ``info`` holds detached tensors on the logits' device (reading them is left to the
    caller, so a training step need not wait for the device): ``reward`` (mean over samples),
    ``advantage_std``, ``entropy`` (mean per-pixel, nats), ``ce`` (mean cross-entropy of the untempered
    logits), ``per_image_ce`` ``[B]``, and ``reward_greedy`` with the greedy baseline.
    """
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
    if credit not in CREDITS:
        raise ValueError(f"unknown credit {credit!r}; choose one of {', '.join(CREDITS)}")
    min_samples = 2 if baseline in ("rloo", "pair") else 1
    if num_samples < min_samples:
        raise ValueError(f"baseline {baseline!r} needs num_samples >= {min_samples}, got {num_samples}")
    if logits.dim() != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"expected logits [B, C, H, W] and target [B, H, W]; got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    if credit == "class" and not callable(getattr(reward_fn, "class_terms", None)):
        raise ValueError(f"credit 'class' needs a reward with per-class terms; {reward_fn!r} has no class_terms")
    b, c = logits.shape[:2]
    policy_classes = 2 if c == 1 else c
    num_classes = policy_classes if num_classes is None else num_classes
    if num_classes < policy_classes:
        raise ValueError(f"num_classes={num_classes} is smaller than the {policy_classes} classes of the logits")

    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    log_probs = _log_probs(logits.float() / temperature)
    target = target.long()
    stats: dict[str, Tensor] = {}
    loss = log_probs.new_zeros(())
    with torch.no_grad():
        probs = log_probs.exp()
    if reward_weight:
        loss = loss + reward_weight * _policy_term(log_probs, probs, target, reward_fn, num_samples, baseline,
                                                   reduction, credit, num_classes, generator, stats, ignore_index)

    # mean per-pixel entropy as one dot product: no [B, C, H, W] temporary
    pixels = b * logits.shape[2] * logits.shape[3]
    if entropy_weight:
        entropy = -torch.dot(log_probs.exp().flatten(), log_probs.flatten()) / pixels
        loss = loss - entropy_weight * entropy
    else:
        entropy = -torch.dot(probs.flatten(), log_probs.detach().flatten()) / pixels
    stats["entropy"] = entropy.detach()
    # per-image cross-entropy of the logits as they are: the CE term, and what a loss-prioritised sampler observes
    ce_log_probs = log_probs if temperature == 1 else _log_probs(logits.float())
    per_image_ce = F.nll_loss(ce_log_probs, target, reduction="none",
                              ignore_index=-100 if ignore_index is None else ignore_index).mean((1, 2))
    if ce_weight:
        loss = loss + ce_weight * per_image_ce.mean()
    stats["ce"] = per_image_ce.detach().mean()
    stats["per_image_ce"] = per_image_ce.detach()
    return loss, stats


def _log_probs(z: Tensor) -> Tensor:
    """Per-pixel class log-probabilities; a Bernoulli logit z is the categorical over {0, 1} with logits (0, z)."""
    return torch.cat([F.logsigmoid(-z), F.logsigmoid(z)], 1) if z.shape[1] == 1 else z.log_softmax(1)


def _policy_term(log_probs: Tensor, probs: Tensor, target: Tensor, reward_fn: Callable, num_samples: int,
                 baseline: str, reduction: str, credit: str, num_classes: int, generator: torch.Generator | None,
                 stats: dict[str, Tensor], ignore_index: int | None = None) -> Tensor:
    """``-mean_samples(reduce_pixels(A * log p(sample)))``; adds reward statistics to ``stats``."""
    b = log_probs.shape[0]
    score = reward_fn.class_terms if credit == "class" else reward_fn
    with torch.no_grad():
        samples = sample_labels(probs, num_samples, generator=generator)
        preds = samples.flatten(0, 1)
        if baseline == "greedy":
            # max(1).indices, not argmax(1): same first-maximum rule, but argmax over a strided dim is ~6x slower on CPU
            preds = torch.cat([preds, log_probs.max(1).indices])
        repeats = preds.shape[0] // b
        ignored = None if ignore_index is None else target == ignore_index
        targets = target.repeat(repeats, 1, 1)
        preds, targets = without_ignored(preds, targets, ignore_index)
        target = targets[:b]  # background where ignored, so the class credit below stays in range
        rewards = score(preds, targets, num_classes).float()
        rewards = rewards.view(repeats, b, *rewards.shape[1:])  # [R, B] or, per class, [R, B, C]
        greedy_rewards = rewards[-1] if baseline == "greedy" else None
        rewards = rewards[:num_samples]
        adv = advantages(rewards, baseline, greedy_rewards)
        if credit == "class":
            pixel_adv = pixel_credit(adv, samples, target)
            image_rewards, adv = rewards.sum(2), adv.sum(2)
        else:
            image_rewards = rewards
        stats["reward"] = image_rewards.mean()
        stats["advantage_std"] = (adv[0::2] if baseline == "pair" else adv).std(correction=0)
        if greedy_rewards is not None:
            stats["reward_greedy"] = greedy_rewards.sum(1).mean() if credit == "class" else greedy_rewards.mean()

    # gather along classes with a [B, K, H, W] index: the K log-probs per pixel without expanding log_probs K times
    sample_logp = log_probs.gather(1, samples.transpose(0, 1)).transpose(0, 1)  # [K, B, H, W]
    if ignored is not None:  # an ignored pixel's sample did not change the reward: no credit
        sample_logp = sample_logp.masked_fill(ignored.unsqueeze(0), 0.0)
    if credit == "image":
        # reduce first, then weight: [K, B] products instead of [K, B, H, W]
        reduced = sample_logp.mean((2, 3)) if reduction == "mean" else sample_logp.sum((2, 3))
        weighted = adv * reduced
    else:
        weighted = pixel_adv * sample_logp
        weighted = weighted.mean((2, 3)) if reduction == "mean" else weighted.sum((2, 3))
    if baseline == "pair":
        weighted = weighted[0::2]
    return -weighted.mean()

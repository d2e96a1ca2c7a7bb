"""Augmentation policies: callables ``policy(images, labels, *, generator=None) -> (images, labels)``.

A policy only decides the per-sample magnitude of every op (a [B, len(OPS)] matrix, zeros for ops
it leaves out) and hands it to :func:`~adaptive_de.augment.ops.apply_ops`. Images may be uint8
(0 – 255) or float in [0, 1] and come back in the same dtype; labels are any integer dtype and come
back in theirs. All randomness comes from ``generator`` (``None``: torch's default CPU generator),
so a seeded generator reproduces a batch exactly.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from adaptive_de.augment.ops import OPS, apply_ops, check_batch
from adaptive_de.data.labels import LAPA, LabelScheme
from adaptive_de.errors import UserError

MAX_LEVEL = 4
"""Levels run from 0 (off) to MAX_LEVEL (magnitudes up to 1)."""


class Policy:
    """Base class: subclasses implement :meth:`magnitudes`."""

    def __init__(self, scheme: LabelScheme = LAPA, *, erase_to_background: bool = True):
        self.scheme = scheme
        self.erase_to_background = erase_to_background

    def magnitudes(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        """float32 [batch_size, len(OPS)] on the generator's device (CPU for ``None``)."""
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, *,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a batch: images uint8 or float in [0, 1] [B, 3, H, W], labels integer [B, H, W].

        Returns new tensors, or the inputs themselves when the batch draws no op at all.
        """
        check_batch(images, labels)
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
        mags = self.magnitudes(images.shape[0], generator)
        if not bool(mags.any()):
            return images, labels
        x = images.float().div_(255) if images.dtype == torch.uint8 else images
        x, labels = apply_ops(x, labels, mags, self.scheme, generator=generator,
                              erase_to_background=self.erase_to_background)
        if images.dtype == torch.uint8:
            return x.mul_(255).round_().to(torch.uint8), labels
        return x, labels


def _param_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_param_device(generator))


class NoAugment(Policy):
    """Return the batch unchanged (the very same tensors)."""

    def magnitudes(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.zeros(batch_size, len(OPS), device=_param_device(generator))

    def __repr__(self) -> str:
        return "NoAugment()"


class RandAugment(Policy):
    """RandAugment (Cubuk et al. 2020): ``n`` distinct ops per image, all at one strength ``m``.

    The ops are drawn uniformly without replacement *per image* (as in the paper, unlike Kornia,
    which picks once per batch), from all of :data:`OPS`. ``m`` runs from 0 to 10, the paper's
    scale: the magnitude is ``min(m / 10, 1)`` of each op's range. A chosen ``hflip`` flips when
    ``m > 5``; directions (signs) are random per image.
    """

    def __init__(self, n: int = 2, m: float = 9, scheme: LabelScheme = LAPA, *, erase_to_background: bool = True):
        super().__init__(scheme, erase_to_background=erase_to_background)
        if not 0 <= n <= len(OPS) or int(n) != n:
            raise ValueError(f"RandAugment n must be an integer in 0..{len(OPS)}, got {n}")
        if not m >= 0:
            raise ValueError(f"RandAugment m must be >= 0, got {m}")
        self.n, self.m = int(n), m

    def magnitudes(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        scores = _uniform((batch_size, len(OPS)), generator)
        chosen = scores.argsort(dim=1)[:, :self.n]  # a uniformly random n-subset per row
        mags = torch.zeros_like(scores)
        return mags.scatter_(1, chosen, min(self.m / 10, 1.0))

    def __repr__(self) -> str:
        return f"RandAugment(n={self.n}, m={self.m}, scheme={self.scheme.name!r})"


class TrivialAugment(Policy):
    """TrivialAugment (Müller & Hutter 2021): one op per image, uniformly random, at a U(0, 1) magnitude.

    Op and strength are drawn per image over the full ("wide") ranges of :data:`OPS`; a chosen
    ``hflip`` therefore flips half the time.
    """

    def magnitudes(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        draws = _uniform((batch_size, 2), generator)
        op = (draws[:, 0] * len(OPS)).long().clamp_(max=len(OPS) - 1)
        mags = torch.zeros(batch_size, len(OPS), device=draws.device)
        return mags.scatter_(1, op.unsqueeze(1), draws[:, 1:])

    def __repr__(self) -> str:
        return f"TrivialAugment(scheme={self.scheme.name!r})"


class LevelPolicy(Policy):
    """One discrete level per op, 0 (off) to 4 (full range): the policy the agent drives.

    Each sample gets each op whose level is above 0 with probability ``p``, at a magnitude drawn
    uniformly in ``[0, level / 4]``. ``hflip`` has no strength, so its level sets how often it fires:
    a sample is mirrored with probability ``p · level / 4`` (level 4 with p = 0.5: the usual coin flip).

    ``levels``: a sequence of len(OPS) ints in :data:`OPS` order, or a mapping {op name: level}
    (missing ops off).
    """

    def __init__(self, levels: Sequence[int] | Mapping[str, int], p: float = 0.5, scheme: LabelScheme = LAPA,
                 *, erase_to_background: bool = True):
        super().__init__(scheme, erase_to_background=erase_to_background)
        self.levels = _parse_levels(levels)
        if not 0 <= p <= 1:
            raise ValueError(f"LevelPolicy p must be in [0, 1], got {p}")
        self.p = p
        self._top = torch.tensor(self.levels, dtype=torch.float32) / MAX_LEVEL
        self._flip = OPS.index("hflip")

    def magnitudes(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        draws = _uniform((2, batch_size, len(OPS)), generator)
        top = self._top.to(draws.device)
        mags = torch.where(draws[0] < self.p, draws[1] * top, 0.0)
        mags[:, self._flip] = (draws[1, :, self._flip] < self.p * top[self._flip]).float()
        return mags

    def __repr__(self) -> str:
        active = ", ".join(f"{name}={level}" for name, level in zip(OPS, self.levels, strict=True) if level)
        return f"LevelPolicy({{{active}}}, p={self.p}, scheme={self.scheme.name!r})"


def _parse_levels(levels: Sequence[int] | Mapping[str, int]) -> tuple[int, ...]:
    if isinstance(levels, Mapping):
        unknown = sorted(set(levels) - set(OPS))
        if unknown:
            raise ValueError(f"unknown op name(s) {unknown}; ops are {', '.join(OPS)}")
        levels = [levels.get(name, 0) for name in OPS]
    else:
        levels = list(levels)
        if len(levels) != len(OPS):
            raise ValueError(f"expected {len(OPS)} levels (one per op: {', '.join(OPS)}), got {len(levels)}")
    for name, level in zip(OPS, levels, strict=True):
        try:
            valid = not isinstance(level, bool) and 0 <= level <= MAX_LEVEL and int(level) == level
        except TypeError:
            valid = False
        if not valid:
            raise ValueError(f"level of {name!r} must be an integer in 0..{MAX_LEVEL}, got {level!r}")
    return tuple(int(level) for level in levels)


POLICY_SPECS = ("none", "randaugment", "randaugment:N,M", "trivialaugment", f"levels:L1,...,L{len(OPS)}")
"""The forms :func:`make_policy` accepts."""


def make_policy(spec: str, scheme: LabelScheme = LAPA) -> Policy:
    """Build a policy from a spec string, one of :data:`POLICY_SPECS` (levels in :data:`OPS` order).

    Raises UserError naming the accepted forms on a bad spec.
    """
    name, _, args = spec.strip().partition(":")
    name = name.strip().lower()
    try:
        values = [float(v) for v in args.split(",")] if args else []
        if name == "none" and not args:
            return NoAugment(scheme)
        if name == "trivialaugment" and not args:
            return TrivialAugment(scheme)
        if name == "randaugment" and len(values) in (0, 2):
            return RandAugment(*values, scheme=scheme)
        if name == "levels" and args:
            return LevelPolicy(values, scheme=scheme)
    except ValueError as e:
        problem = f" ({e})"
    else:
        problem = ""
    raise UserError(f"bad augmentation policy {spec!r}{problem}; use one of: {', '.join(POLICY_SPECS)}")

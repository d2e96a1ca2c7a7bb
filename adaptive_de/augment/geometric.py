"""Geometric ops: one affine warp per sample for images and label maps, and the label-swapping flip.

Coordinates are pixels relative to the image centre, x to the right and y *down*; a positive
angle turns the content counter-clockwise on screen (Kornia's convention). Rotation, scale and
shear act about the image centre.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from adaptive_de.data.labels import LabelScheme


@functools.lru_cache(maxsize=16)
def _flip_luts(scheme: LabelScheme, device: torch.device) -> torch.Tensor:
    """int64 [2, 256]: row 0 the identity, row 1 the flip lookup table (indexed by a flip flag)."""
    lut = scheme.flip_lut()
    return torch.stack([torch.arange(len(lut)), lut]).to(device)


@functools.lru_cache(maxsize=16)
def _base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[H*W, 3] rows (x, y, 1) of the normalised pixel centres: ``affine_grid`` is this times theta.T.

    Caching it halves the grid's cost against ``F.affine_grid``, which rebuilds it on every call.
    """
    identity = torch.eye(2, 3, device=device, dtype=dtype).unsqueeze(0)
    xy = F.affine_grid(identity, [1, 1, h, w], align_corners=False).view(h * w, 2)
    return torch.cat([xy, xy.new_ones(h * w, 1)], dim=1)


def hflip(images: torch.Tensor, labels: torch.Tensor, scheme: LabelScheme) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror images [..., H, W] and label maps [..., H, W] left-right, swapping the scheme's left/right ids.

    The swap reads every id through ``scheme.flip_lut()`` at once, so pairs never chain. Label ids
    must lie in ``[0, 256)``; those outside the pairs (an ignore id too) stay.
    """
    lut = _flip_luts(scheme, labels.device)[1]
    return images.flip(-1), lut[labels.long()].to(labels.dtype).flip(-1)


def affine_theta(
    angle: torch.Tensor,
    scale: torch.Tensor,
    translate: torch.Tensor,
    shear: torch.Tensor,
    flip: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """Per-sample matrices [B, 2, 3] in the sense of ``F.affine_grid(..., align_corners=False)``.

    The content moves by ``p_out = R(angle) · Shear(shear) · scale · Flip · p_in + translate``, with
    ``angle`` [B] in degrees (counter-clockwise), ``scale`` [B] (> 1 enlarges), ``translate`` [B, 2]
    in pixels (x, y), ``shear`` [B] (x += shear · y) and ``flip`` [B] bool (x → −x). affine_grid wants
    the inverse map, from output to input, in normalised coordinates.
    """
    rad = angle * (math.pi / 180)
    cos, sin = torch.cos(rad), torch.sin(rad)
    sx = torch.where(flip, -scale, scale)
    # A = R · Shear · diag(sx, scale); with y down, an on-screen counter-clockwise turn is [[c, s], [-s, c]].
    a = cos * sx
    b = (cos * shear + sin) * scale
    c = -sin * sx
    d = (cos - sin * shear) * scale
    det = a * d - b * c
    inv = torch.stack([d, -b, -c, a], dim=1).view(-1, 2, 2) / det.view(-1, 1, 1)
    # Normalised → pixel coordinates: p = diag(W/2, H/2) · n (align_corners=False puts ±1 on the image edges).
    h, w = size
    half = inv.new_tensor([w / 2, h / 2])
    linear = inv * half.view(1, 1, 2) / half.view(1, 2, 1)
    shift = -(inv @ translate.unsqueeze(-1)).squeeze(-1) / half
    return torch.cat([linear, shift.unsqueeze(-1)], dim=2)


def warp(
    images: torch.Tensor,
    labels: torch.Tensor,
    theta: torch.Tensor,
    flip: torch.Tensor | None,
    scheme: LabelScheme,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample images [B, 3, H, W] (bilinear) and labels [B, H, W] (nearest) through one shared grid.

    Pixels from outside the image become black in the images and background (0) in the labels, so
    an uncovered border is consistently "background". Samples with ``flip`` [B] set also get their
    left/right label ids swapped (the mirror itself is part of ``theta``); ``None`` means no flips.
    """
    b, _, h, w = images.shape
    grid = torch.matmul(_base_grid(h, w, images.device, images.dtype), theta.to(images.dtype).transpose(1, 2))
    grid = grid.view(b, h, w, 2)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if flip is None:
        ids = labels.to(grid.dtype)
    else:
        # Nearest sampling only moves ids, so swapping before it is the same as after; done here, the
        # lookup doubles as the conversion to float that grid_sample needs.
        luts = _flip_luts(scheme, labels.device).to(grid.dtype)
        row = flip.long().view(-1, 1, 1) * luts.shape[1]
        ids = luts.view(-1).index_select(0, (labels.long() + row).view(-1)).view(labels.shape)
    ids = F.grid_sample(ids.unsqueeze(1), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return images, ids.squeeze(1).to(labels.dtype)

"""Occlusion: random erasing (Zhong et al. 2020) of one rectangle per sample, batched."""
from __future__ import annotations

import math

import torch

MAX_ASPECT = 3.0
"""Erased boxes have a height/width ratio drawn log-uniformly in [1/MAX_ASPECT, MAX_ASPECT]."""


def erase_boxes(area: torch.Tensor, uniforms: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """int64 [B, 4] boxes (top, left, height, width) that lie inside an image of ``size`` (H, W).

    ``area`` [B] is the fraction of the image to cover; ``uniforms`` [B, 3] are U(0, 1) draws for
    the aspect ratio and the position. Boxes are at least one pixel wide and high.
    """
    h, w = size
    aspect = torch.exp((2 * uniforms[:, 0] - 1) * math.log(MAX_ASPECT))
    pixels = area * (h * w)
    box_h = torch.sqrt(pixels * aspect).round().clamp(1, h)
    box_w = torch.sqrt(pixels / aspect).round().clamp(1, w)
    top = (uniforms[:, 1] * (h - box_h + 1)).floor()
    left = (uniforms[:, 2] * (w - box_w + 1)).floor()
    return torch.stack([top, left, box_h, box_w], dim=1).long()


def box_masks(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """bool [B, H, W]: True inside box i of ``boxes`` [B, 4] (see :func:`erase_boxes`)."""
    h, w = size
    top, left, box_h, box_w = boxes.unsqueeze(-1).unbind(1)
    rows = torch.arange(h, device=boxes.device) - top
    cols = torch.arange(w, device=boxes.device) - left
    return ((rows >= 0) & (rows < box_h)).unsqueeze(2) & ((cols >= 0) & (cols < box_w)).unsqueeze(1)


def erase_images(images: torch.Tensor, boxes: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Paint box i of ``boxes`` [B, 4] with colour ``fill`` [B, 3] in image i; the labels are left alone."""
    return _paint(images, box_masks(boxes, images.shape[-2:]), fill)


def erase(
    images: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor, fill: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`erase_images`, and the erased pixels become background (0) in the labels.

    That is the right labelling for an occluder in front of the face (the synthetic benchmark labels
    its occluders so); :func:`erase_images` alone asks the model to see through the occluder.
    """
    inside = box_masks(boxes, images.shape[-2:])
    return _paint(images, inside, fill), labels.masked_fill(inside, 0)


def _paint(images: torch.Tensor, inside: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    return torch.where(inside.unsqueeze(1), fill.to(images.dtype).view(-1, 3, 1, 1), images)

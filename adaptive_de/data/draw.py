"""Drawing helpers for face-parsing batches: coloured label overlays, tile grids and a class legend.

Everything returns uint8 CHW tensors, the form TensorBoard's ``add_image`` takes.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from adaptive_de.data.labels import LabelScheme
from adaptive_de.files import atomic_path

WHITE = 255


def overlay(images: torch.Tensor, labels: torch.Tensor, scheme: LabelScheme, *, alpha: float = 0.5) -> torch.Tensor:
    """Blend each labelled pixel with its class colour: uint8 [N,3,H,W] images, [N,H,W] labels → [N,3,H,W].

    Background (class 0) pixels are left as they are, so the face stays visible around the parts.
    """
    colours = scheme.palette().to(images.device)[labels.long()].permute(0, 3, 1, 2).float()
    blended = (images.float() * (1 - alpha) + colours * alpha).round()
    return torch.where((labels != 0).unsqueeze(1), blended, images.float()).to(torch.uint8)


def upscale(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Enlarge [..., H, W] by an integer ``factor`` with nearest-neighbour (pixels stay crisp)."""
    return images.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def grid(tiles: torch.Tensor, *, ncol: int, pad: int = 2, fill: int = WHITE) -> torch.Tensor:
    """Lay uint8 tiles [N,3,H,W] out row by row, ``ncol`` per row, ``pad`` pixels apart → uint8 [3,H',W'].

    H' = rows*(H+pad)+pad and W' = ncol*(W+pad)+pad.
    """
    n, channels, h, w = tiles.shape
    rows = max(1, math.ceil(n / ncol))
    out = torch.full((channels, rows * (h + pad) + pad, ncol * (w + pad) + pad), fill, dtype=torch.uint8,
                     device=tiles.device)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[:, y:y + h, x:x + w] = tile
    return out


def legend(scheme: LabelScheme, width: int, *, swatch: int = 12, margin: int = 4) -> torch.Tensor:
    """A white strip ``width`` pixels wide listing each class as colour swatch + ``id name`` → uint8 [3,H,width]."""
    font = ImageFont.load_default()
    texts = [f"{i} {name}" for i, name in enumerate(scheme.classes)]
    ids = list(range(scheme.num_classes))
    if scheme.ignore_index is not None:
        texts.append(f"{scheme.ignore_index} ignored")
        ids.append(scheme.ignore_index)
    colours = [tuple(c) for c in scheme.palette()[ids].tolist()]
    boxes = [font.getbbox(text) for text in texts]
    line = max(swatch, *(b[3] for b in boxes)) + 4
    cell = swatch + 4 + max(b[2] for b in boxes) + 12
    cols = max(1, (width - 2 * margin) // cell)
    rows = math.ceil(len(texts) / cols)
    picture = Image.new("RGB", (width, rows * line + 2 * margin), (WHITE,) * 3)
    pen = ImageDraw.Draw(picture)
    for i, (text, colour) in enumerate(zip(texts, colours, strict=True)):
        r, c = divmod(i, cols)
        x, y = margin + c * cell, margin + r * line
        pen.rectangle((x, y, x + swatch - 1, y + swatch - 1), fill=colour, outline=(0, 0, 0))
        pen.text((x + swatch + 4, y), text, fill=(0, 0, 0), font=font)
    return torch.from_numpy(np.array(picture)).permute(2, 0, 1).contiguous()


def preview_grid(images: torch.Tensor, labels: torch.Tensor, scheme: LabelScheme, *, min_side: int = 128,
                 alpha: float = 0.5, ncol: int | None = None, with_legend: bool = True) -> torch.Tensor:
    """Each sample as image + overlay side by side, enlarged to at least ``min_side`` px, ``ncol`` pairs a row.

    ``ncol`` defaults to a near-square layout. A class legend goes underneath. Returns uint8 [3,H,W].
    """
    factor = max(1, math.ceil(min_side / images.shape[-1]))
    pairs = torch.stack([images, overlay(images, labels, scheme, alpha=alpha)], dim=1).flatten(0, 1)
    ncol = ncol or math.ceil(math.sqrt(len(images)))
    picture = grid(upscale(pairs, factor), ncol=2 * ncol)
    if not with_legend:
        return picture
    return torch.cat([picture, legend(scheme, picture.shape[-1]).to(picture.device)], dim=1)


def save_png(picture: torch.Tensor, path: str | os.PathLike) -> None:
    """Write a uint8 [3,H,W] tensor as a PNG; a reader never sees a half-written file."""
    with atomic_path(path) as tmp:
        # the temporary name ends in .tmp, so the format cannot come from the suffix
        Image.fromarray(picture.permute(1, 2, 0).cpu().numpy()).save(tmp, format="PNG")

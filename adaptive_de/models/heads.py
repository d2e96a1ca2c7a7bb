"""Task heads on the Face Transformer: dense face-parsing heads and the two task models."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .vit import FaceTransformer, FaceTransformerConfig


def _tokens_to_map(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Patch tokens [B, gh*gw, D] (class token already dropped) -> feature map [B, D, gh, gw]."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)


def _resize(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class LinearHead(nn.Module):
    """One linear classifier per token, then bilinear upsampling of the logit grid to the input size."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
        return _resize(_tokens_to_map(self.classifier(tokens), grid), size)


class ProgressiveHead(nn.Module):
    """Two learned 2x upsamplings (transposed conv, GroupNorm, GELU), a 1x1 classifier, then bilinear to size.

    GroupNorm rather than BatchNorm: the output does not depend on the batch's composition,
    which matters when augmented training batches and clean evaluation batches differ in
    statistics, and when sampled predictions are scored per image.
    """

    def __init__(self, dim: int, num_classes: int, groups: int = 8):
        super().__init__()
        layers: list[nn.Module] = []
        channels = dim
        for _ in range(2):
            out = max(channels // 2, 1)
            layers += [nn.ConvTranspose2d(channels, out, kernel_size=2, stride=2),
                       nn.GroupNorm(math.gcd(groups, out), out), nn.GELU()]
            channels = out
        self.upsample = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(channels, num_classes, kernel_size=1)

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
        return _resize(self.classifier(self.upsample(_tokens_to_map(tokens, grid))), size)


HEADS: dict[str, type[nn.Module]] = {"linear": LinearHead, "progressive": ProgressiveHead}
DEFAULT_HEAD = "progressive"


class ParsingModel(nn.Module):
    """Face parsing: images [B, C, H, W] -> per-pixel class logits [B, num_classes, H, W]."""

    task = "parsing"

    def __init__(self, cfg: FaceTransformerConfig, num_classes: int, head: str = DEFAULT_HEAD):
        super().__init__()
        self.preset, self.num_classes, self.head_name = cfg, num_classes, head
        self.backbone = FaceTransformer(cfg)
        self.head = HEADS[head](cfg.dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, grid = self.backbone.forward_features(x)
        return self.head(tokens[:, 1:], grid, (x.shape[-2], x.shape[-1]))


class RecognitionModel(nn.Module):
    """Face recognition: images -> the embedding [B, dim]; train it with ``adaptive_de.losses.CosFace``."""

    task = "recognition"

    def __init__(self, cfg: FaceTransformerConfig):
        super().__init__()
        self.preset = cfg
        self.embed_dim = cfg.dim
        self.backbone = FaceTransformer(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

"""Plug-in model factories for ``build_model("tests.model_plugins:NAME")`` in tests/test_unet.py."""
from __future__ import annotations

import torch
from torch import nn


class TinyConvNet(nn.Module):
    """Two convolutions at full resolution: logits [B, num_classes, H, W], a parsing model in miniature."""

    def __init__(self, num_classes: int, stride: int = 1):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=stride, padding=1), nn.ReLU())
        self.classifier = nn.Conv2d(16, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class NoisyNet(TinyConvNet):
    """Draws from the global RNG in every forward pass, train or eval, and keeps ``frozen`` in eval mode:
    building it must neither consume the global RNG nor change any module's mode."""

    def __init__(self, num_classes: int):
        super().__init__(num_classes)
        self.frozen = nn.Dropout(0.5).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x + 0 * torch.randn_like(x))


def good(num_classes: int) -> nn.Module:
    return TinyConvNet(num_classes)


def half(num_classes: int) -> nn.Module:
    """A wrong parsing model: its logits are at half the input resolution."""
    return TinyConvNet(num_classes, stride=2)


def noisy(num_classes: int) -> nn.Module:
    return NoisyNet(num_classes)


def not_a_module(num_classes: int) -> dict:
    return {"num_classes": num_classes}


def broken(num_classes: int) -> nn.Module:
    raise ValueError("no weights for this face\nsecond line")


NOT_CALLABLE = 3

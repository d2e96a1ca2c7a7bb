"""A ResNet-18 U-Net: the CNN baseline for face parsing, with an encoder that loads torchvision's ImageNet weights.

The encoder is written here rather than imported: torchvision has no wheel for the CPU torch build CI uses.
Its module names, shapes and initialisation follow ``torchvision.models.resnet18`` exactly (without ``fc``),
so the state dict of torchvision's ImageNet model (a ``.pth`` file) loads into it unchanged.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

# The ImageNet statistics torchvision's weights were trained with (on [0, 1] pixels).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DECODER_CHANNELS = (256, 128, 64, 32)


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: two 3x3 conv/BN, with a 1x1 conv/BN shortcut where the shape changes."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18Encoder(nn.Module):
    """torchvision's ``resnet18`` without ``avgpool`` and ``fc``; ``forward`` returns the five feature maps a
    U-Net skips from: the stem (64 ch, 1/2), ``layer1`` (64, 1/4), ``layer2`` (128, 1/8), ``layer3`` (256,
    1/16) and ``layer4`` (512, 1/32)."""

    channels = (64, 64, 128, 256, 512)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        # torchvision's initialisation (zero_init_residual=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        stem = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(stem))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [stem, f1, f2, f3, self.layer4(f3)]


class DecoderBlock(nn.Module):
    """Upsample to the skip's size, concatenate the skip, then two 3x3 conv/BN/ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # To the skip's exact size rather than x2: sizes that are not multiples of 32 round differently
        # down the encoder (e.g. 112 -> 56, 28, 14, 7, 4), and this matches them all.
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.convs(torch.cat([x, skip], dim=1))


@dataclass(frozen=True)
class UNetConfig:
    """The CNN baseline's preset (``models.PRESETS["unet-r18"]``): the size it trains at when the config gives
    none. The network itself takes any size."""

    image_size: int = 64


class UNetResNet18(nn.Module):
    """Face parsing CNN: images [B, 3, H, W] in [-1, 1] (the trainer's ``normalise``) -> logits
    [B, num_classes, H, W], for any H and W.

    ``.encoder`` is a ``ResNet18Encoder`` (load ImageNet weights with ``load_encoder_weights``); the
    decoder climbs from ``layer4`` through ``layer3``, ``layer2``, ``layer1`` and the stem, then a 1x1
    classifier and bilinear upsampling to the input size.
    """

    task = "parsing"

    def __init__(self, num_classes: int, decoder_channels: tuple[int, int, int, int] = DECODER_CHANNELS):
        super().__init__()
        self.num_classes = num_classes
        self.encoder = ResNet18Encoder()
        skips = self.encoder.channels[-2::-1]  # layer3, layer2, layer1, stem
        ins = (self.encoder.channels[-1], *decoder_channels[:-1])
        self.decoder = nn.ModuleList(DecoderBlock(i, s, o)
                                     for i, s, o in zip(ins, skips, decoder_channels, strict=True))
        self.classifier = nn.Conv2d(decoder_channels[-1], num_classes, 1)
        # [-1, 1] -> ImageNet normalisation, so pretrained encoder weights see the inputs they were trained on.
        # Non-persistent: the state dict stays parameters and BN statistics only.
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("input_scale", 0.5 / std, persistent=False)
        self.register_buffer("input_shift", (0.5 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / std,
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        *skips, x = self.encoder(x * self.input_scale + self.input_shift)
        for block, skip in zip(self.decoder, reversed(skips), strict=True):
            x = block(x, skip)
        # The 1x1 classifier before the final upsampling: both are linear and bilinear weights sum to one, so
        # this equals upsample-then-classify while interpolating num_classes channels instead of 32.
        return F.interpolate(self.classifier(x), size=size, mode="bilinear", align_corners=False)


def load_encoder_weights(encoder: ResNet18Encoder, path: str | os.PathLike) -> None:
    """Load a torchvision ``resnet18`` state dict (a ``.pth`` file) into ``encoder``, dropping ``fc.*``.

    A missing or unreadable file, missing or unexpected keys, or a wrong shape is a ``UserError`` naming them.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"encoder weights {path} do not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types; all mean "not a plain state dict"
        raise UserError(f"cannot load encoder weights {path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"encoder weights {path} are not a state dict of tensors (torchvision resnet18's .pth)")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    want = encoder.state_dict()
    # torchvision's ImageNet file predates BatchNorm's num_batches_tracked; BatchNorm fills it in on loading.
    missing = [k for k in want if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in want]
    if missing or unexpected:
        parts = [f"{label} {_some(keys)}" for label, keys in (("missing", missing), ("unexpected", unexpected))
                 if keys]
        raise UserError(f"encoder weights {path} do not fit resnet18: {'; '.join(parts)}")
    for key, value in state.items():
        if value.shape != want[key].shape:
            raise UserError(f"encoder weights {path}: {key} has shape {tuple(value.shape)}, "
                            f"resnet18 expects {tuple(want[key].shape)}")
    encoder.load_state_dict(state)


def _some(keys: list[str], n: int = 5) -> str:
    shown = ", ".join(keys[:n])
    return f"{shown} (+{len(keys) - n} more)" if len(keys) > n else shown

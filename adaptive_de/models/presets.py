"""Named Face Transformer shapes, the CNN baseline, plug-in models, and ``build_model``."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError
from ..plugins import import_object, one_line
from .heads import DEFAULT_HEAD, HEADS, ParsingModel, RecognitionModel
from .unet import UNetConfig, UNetResNet18, load_encoder_weights
from .vit import FaceTransformerConfig


def _paper(patch: int, padding: int) -> FaceTransformerConfig:
    return FaceTransformerConfig(image_size=112, patch=patch, stride=8, padding=padding,
                                 dim=512, depth=20, heads=8, mlp_dim=2048, dropout=0.1)


CNN = "unet-r18"  # the ResNet-18 U-Net baseline (models/unet.py)
PRESETS: dict[str, FaceTransformerConfig | UNetConfig] = {
    # The paper's models: 14x14 tokens on 112x112 faces.
    "vit-p8s8": _paper(8, 0),
    "vit-p10s8": _paper(10, 1),
    "vit-p12s8": _paper(12, 4),
    # CPU-sized models: 64x64 faces, overlapping 8px windows every 4px -> 16x16 tokens.
    "tiny": FaceTransformerConfig(image_size=64, patch=8, stride=4, padding=2, dim=64, depth=3, heads=2, mlp_dim=256),
    "small": FaceTransformerConfig(image_size=64, patch=8, stride=4, padding=2, dim=192, depth=6, heads=3, mlp_dim=768),
    # The CNN baseline, at the CPU presets' 64x64 faces.
    CNN: UNetConfig(image_size=64),
}
VIT_PRESETS = {name: cfg for name, cfg in PRESETS.items() if isinstance(cfg, FaceTransformerConfig)}
TASKS = ("parsing", "recognition")
# Image size of plug-in models when the config gives none: the CPU presets' 64 px faces.
DEFAULT_SIZE = 64


def _choose(kind: str, name: str, choices) -> None:
    if name not in choices:
        raise UserError(f"unknown {kind} {name!r}; choose one of: {', '.join(choices)}")


def default_image_size(name: str) -> int:
    """The image size a model named ``name`` trains at when the config gives none: a preset's own size,
    else ``DEFAULT_SIZE`` (``package.module:factory`` plug-ins)."""
    if name in PRESETS:
        return PRESETS[name].image_size
    if ":" in name:
        return DEFAULT_SIZE
    raise UserError(f"unknown model preset {name!r}; choose one of: {', '.join(PRESETS)}, "
                    "or give 'package.module:factory'")


def build_model(preset: str | FaceTransformerConfig, *, num_classes: int, task: str = "parsing",
                head: str | None = None, image_size: int | None = None, weights: str | None = None) -> nn.Module:
    """Build a face model: a Face Transformer, the ResNet-18 U-Net, or a plug-in.

    Args:
        preset: a name in ``VIT_PRESETS`` or a ``FaceTransformerConfig`` (a Face Transformer);
            ``"unet-r18"`` (``UNetResNet18``, the CNN baseline); or ``"package.module:factory"``, a plug-in
            whose ``factory(num_classes=N)`` returns an ``nn.Module`` mapping images [B, 3, H, W] in [-1, 1]
            to logits [B, N, H, W].
        num_classes: label classes for ``task="parsing"`` (1 means one binary logit map).
            Unused for ``"recognition"``: its classifier is ``adaptive_de.losses.CosFace``,
            kept out of the model so the identity count never constrains the backbone.
        task: ``"parsing"`` (logits [B, num_classes, H, W]) or ``"recognition"`` (embedding [B, dim];
            Face Transformers only).
        head: parsing head of a Face Transformer, ``"linear"`` or ``"progressive"`` (default ``DEFAULT_HEAD``).
        image_size: the training image size; the CNN and plug-ins are checked with one forward pass of
            zeros [2, 3, S, S] at it (default ``default_image_size(preset)``). Face Transformers ignore it.
        weights: ``"unet-r18"`` only: a torchvision ``resnet18`` state dict (``.pth``) for its encoder.

    A Face Transformer has ``.backbone`` (``FaceTransformer``), ``.preset`` (its config) and ``.task``.
    Every mistake (unknown name, failing plug-in, wrong output shape, unfitting weights) is a ``UserError``.
    """
    # the size a CNN or plug-in is probed at; default_image_size also rejects an unknown name
    size = image_size or (default_image_size(preset) if isinstance(preset, str) else preset.image_size)
    vit = not isinstance(preset, str) or preset in VIT_PRESETS
    _choose("task", task, TASKS)
    if weights is not None and preset != CNN:
        raise UserError(f"weights apply to model {CNN!r} only (its ResNet-18 encoder), not {_name(preset)!r}")
    if vit:
        return _build_vit(VIT_PRESETS[preset] if isinstance(preset, str) else preset, num_classes, task, head)
    if task != "parsing":
        raise UserError(f"task {task!r} needs a Face Transformer preset ({', '.join(VIT_PRESETS)}); "
                        f"{preset!r} is a parsing model")
    if head is not None:
        raise UserError(f"head applies to Face Transformer presets only; {preset!r} has its own decoder")
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1 for parsing, got {num_classes}")
    if preset == CNN:
        model: nn.Module = UNetResNet18(num_classes)
        if weights is not None:
            load_encoder_weights(model.encoder, weights)
    else:
        model = _plugin(preset, num_classes)
    _check_output(model, preset, num_classes, size)
    return model


def _name(preset: str | FaceTransformerConfig) -> str:
    return preset if isinstance(preset, str) else "FaceTransformerConfig"


def _build_vit(cfg: FaceTransformerConfig, num_classes: int, task: str, head: str | None) -> nn.Module:
    if task == "recognition":
        if head is not None:
            raise UserError("head applies to task 'parsing' only; recognition returns the embedding")
        return RecognitionModel(cfg)
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1 for parsing, got {num_classes}")
    head = DEFAULT_HEAD if head is None else head
    _choose("parsing head", head, HEADS)
    return ParsingModel(cfg, num_classes, head)


def _plugin(spec: str, num_classes: int) -> nn.Module:
    """``factory(num_classes=N)`` of ``"package.module:factory"``; any failure of the plug-in is the user's."""
    obj = import_object(spec, "model")
    attr = spec.partition(":")[2]
    if not callable(obj):
        raise UserError(f"model {spec!r}: {attr!r} is a {type(obj).__name__}, not a callable factory")
    try:
        model = obj(num_classes=num_classes)
    except Exception as e:  # as on import: the factory's failure is the plug-in's
        raise UserError(f"model {spec!r}: {attr}(num_classes={num_classes}) failed ({one_line(e)})") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"model {spec!r}: {attr}(num_classes={num_classes}) returned a {type(model).__name__}, "
                        "not a torch.nn.Module")
    return model


def _check_output(model: nn.Module, name: str, num_classes: int, size: int) -> None:
    """One forward pass of zeros [2, 3, size, size]: a parsing model must return logits [2, num_classes, size,
    size]. In eval mode (no BatchNorm statistics updated) and off the global RNG stream, so building a model
    draws exactly what its initialisation draws; every module's train/eval mode is restored after."""
    x_shape, want = (2, 3, size, size), (2, num_classes, size, size)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            out = model(torch.zeros(x_shape, device=device))
    except Exception as e:  # a model that cannot run on the training input is the user's to fix
        raise UserError(f"model {name} fails on input {x_shape} ({one_line(e)})") from None
    finally:
        for m, training in modes:
            m.training = training
    if not isinstance(out, torch.Tensor):
        raise UserError(f"model {name} returns a {type(out).__name__} for input {x_shape}; a parsing model must "
                        f"return per-pixel logits, a tensor {want}")
    if tuple(out.shape) != want:
        raise UserError(f"model {name} returns shape {tuple(out.shape)} for input {x_shape}; a parsing model must "
                        f"return per-pixel logits {want}")

"""Named Face Transformer shapes and ``build_model``."""
from __future__ import annotations

from torch import nn

from ..errors import UserError
from .heads import DEFAULT_HEAD, HEADS, ParsingModel, RecognitionModel
from .vit import FaceTransformerConfig


def _paper(patch: int, padding: int) -> FaceTransformerConfig:
    return FaceTransformerConfig(image_size=112, patch=patch, stride=8, padding=padding,
                                 dim=512, depth=20, heads=8, mlp_dim=2048, dropout=0.1)


PRESETS: dict[str, FaceTransformerConfig] = {
    # The paper's models: 14x14 tokens on 112x112 faces.
    "vit-p8s8": _paper(8, 0),
    "vit-p10s8": _paper(10, 1),
    "vit-p12s8": _paper(12, 4),
    # CPU-sized models: 64x64 faces, overlapping 8px windows every 4px -> 16x16 tokens.
    "tiny": FaceTransformerConfig(image_size=64, patch=8, stride=4, padding=2, dim=64, depth=3, heads=2, mlp_dim=256),
    "small": FaceTransformerConfig(image_size=64, patch=8, stride=4, padding=2, dim=192, depth=6, heads=3, mlp_dim=768),
}
TASKS = ("parsing", "recognition")


def _choose(kind: str, name: str, choices) -> None:
    if name not in choices:
        raise UserError(f"unknown {kind} {name!r}; choose one of: {', '.join(choices)}")


def build_model(preset: str | FaceTransformerConfig, *, num_classes: int, task: str = "parsing",
                head: str | None = None) -> nn.Module:
    """Build a Face Transformer model.

    Args:
        preset: a name in ``PRESETS`` or a ``FaceTransformerConfig``.
        num_classes: label classes for ``task="parsing"`` (1 means one binary logit map).
            Unused for ``"recognition"``: its classifier is ``adaptive_de.losses.CosFace``,
            kept out of the model so the identity count never constrains the backbone.
        task: ``"parsing"`` (logits [B, num_classes, H, W]) or ``"recognition"`` (embedding [B, dim]).
        head: parsing head, ``"linear"`` or ``"progressive"`` (default ``DEFAULT_HEAD``).

    The model has ``.backbone`` (``FaceTransformer``), ``.preset`` (its config) and ``.task``.
    """
    if isinstance(preset, str):
        _choose("model preset", preset, PRESETS)
        preset = PRESETS[preset]
    _choose("task", task, TASKS)
    if task == "recognition":
        if head is not None:
            raise UserError("head applies to task 'parsing' only; recognition returns the embedding")
        return RecognitionModel(preset)
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1 for parsing, got {num_classes}")
    head = DEFAULT_HEAD if head is None else head
    _choose("parsing head", head, HEADS)
    return ParsingModel(preset, num_classes, head)

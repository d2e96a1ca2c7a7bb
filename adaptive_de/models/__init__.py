"""Face Transformer backbone, parsing heads and named presets."""
from .heads import DEFAULT_HEAD, HEADS, LinearHead, ParsingModel, ProgressiveHead, RecognitionModel
from .presets import PRESETS, TASKS, build_model
from .vit import FaceTransformer, FaceTransformerConfig, PatchEmbed, resize_pos_embed

__all__ = [
    "DEFAULT_HEAD", "HEADS", "PRESETS", "TASKS", "FaceTransformer", "FaceTransformerConfig", "LinearHead",
    "ParsingModel", "PatchEmbed", "ProgressiveHead", "RecognitionModel", "build_model", "resize_pos_embed",
]

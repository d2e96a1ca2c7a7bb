"""Face Transformer backbone, parsing heads and named presets; the ResNet-18 U-Net baseline; ``build_model``."""
from .heads import DEFAULT_HEAD, HEADS, LinearHead, ParsingModel, ProgressiveHead, RecognitionModel
from .presets import CNN, DEFAULT_SIZE, PRESETS, TASKS, VIT_PRESETS, build_model, default_image_size
from .unet import ResNet18Encoder, UNetConfig, UNetResNet18, load_encoder_weights
from .vit import FaceTransformer, FaceTransformerConfig, PatchEmbed, resize_pos_embed

__all__ = [
    "CNN", "DEFAULT_HEAD", "DEFAULT_SIZE", "HEADS", "PRESETS", "TASKS", "VIT_PRESETS", "FaceTransformer",
    "FaceTransformerConfig", "LinearHead", "ParsingModel", "PatchEmbed", "ProgressiveHead", "RecognitionModel",
    "ResNet18Encoder", "UNetConfig", "UNetResNet18", "build_model", "default_image_size", "load_encoder_weights",
    "resize_pos_embed",
]

"""Losses for the Face Transformer."""
from .cosface import CosFace as CosFace

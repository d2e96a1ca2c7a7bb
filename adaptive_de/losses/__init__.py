"""Losses for the Face Transformer."""
from .cosface import CosFace as CosFace
from .reinforce import reinforce_loss as reinforce_loss

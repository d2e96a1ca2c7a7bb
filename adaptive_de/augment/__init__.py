"""Batched, mask-aware augmentation with per-sample magnitudes, and the policies built on it.

Everything runs on the batch's device without per-sample Python loops; any horizontal flip swaps
the label scheme's left/right ids. See :mod:`adaptive_de.augment.ops` for the ops and their ranges.
"""
from adaptive_de.augment.geometric import hflip
from adaptive_de.augment.ops import OPS, RANGES, apply_ops, magnitude_matrix
from adaptive_de.augment.policies import (
    MAX_LEVEL,
    POLICY_SPECS,
    LevelPolicy,
    NoAugment,
    Policy,
    RandAugment,
    TrivialAugment,
    make_policy,
)

__all__ = [
    "MAX_LEVEL", "OPS", "POLICY_SPECS", "RANGES", "LevelPolicy", "NoAugment", "Policy", "RandAugment",
    "TrivialAugment", "apply_ops", "hflip", "magnitude_matrix", "make_policy",
]

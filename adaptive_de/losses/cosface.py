"""CosFace (large margin cosine loss) classifier head for face recognition."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CosFace(nn.Module):
    """Cosine classifier with an additive margin on the target class (Wang et al. 2018).

    ``head(embedding, labels)`` returns ``s * (cos - m * onehot(labels))`` for training with
    cross-entropy; ``head(embedding)`` returns ``s * cos`` (no margin) for inference.
    ``cos = normalize(embedding) @ normalize(W).T``; there is no bias.
    """

    def __init__(self, in_features: int, num_classes: int, s: float = 64.0, m: float = 0.35):
        super().__init__()
        self.s, self.m = s, m
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # fp32 cosines even under bf16 autocast: s=64 times bf16's rounding error (~4e-3) would rival the margin.
        with torch.autocast(embedding.device.type, enabled=False):
            cos = F.linear(F.normalize(embedding.float()), F.normalize(self.weight.float()))
        if labels is not None:
            cos = cos.scatter_add(1, labels.long().view(-1, 1), cos.new_full((labels.numel(), 1), -self.m))
        return self.s * cos

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, num_classes={self.weight.shape[0]}, s={self.s}, m={self.m}"

"""Face Transformer backbone (Zhong & Deng 2021): a pre-norm ViT with overlapping patches.

Input: float images [B, C, H, W]. The model makes no assumption about their range; this
project's trainer feeds ``(uint8 / 255 - 0.5) / 0.5``, i.e. values in [-1, 1]. (The
reference code fed raw 0-255 pixels; any fixed affine rescaling only changes the
effective scale of the patch projection's initialisation.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class FaceTransformerConfig:
    """Shape of a Face Transformer. Patches are cut like ``nn.Unfold(patch, stride=stride, padding=padding)``."""

    image_size: int
    patch: int
    stride: int
    padding: int
    dim: int
    depth: int
    heads: int
    mlp_dim: int
    dropout: float = 0.0
    in_chans: int = 3

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.grid_size(self.image_size, self.image_size)[0] < 1:
            raise ValueError(f"patch {self.patch} does not fit a {self.image_size}px image")

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Token grid (rows, cols) for an input of ``height`` x ``width`` pixels."""
        def n(size: int) -> int:
            return (size + 2 * self.padding - self.patch) // self.stride + 1
        return n(height), n(width)

    @property
    def num_patches(self) -> int:
        gh, gw = self.grid_size(self.image_size, self.image_size)
        return gh * gw

    @property
    def patch_dim(self) -> int:
        return self.in_chans * self.patch * self.patch


class PatchEmbed(nn.Module):
    """``nn.Unfold`` followed by one ``nn.Linear``, computed as a single convolution.

    Unfold flattens each window channel-major (c, kh, kw), which is exactly the memory
    order of a conv weight [dim, C, P, P]; so viewing the Linear's weight that way gives
    the same result without materialising the overlapping patches ((P/S)^2 times the image).
    The parameters stay those of one Linear: counts match the reference, and a reference
    Linear weight [dim, C*P*P] loads unchanged.
    """

    def __init__(self, cfg: FaceTransformerConfig):
        super().__init__()
        self.in_chans, self.patch, self.stride, self.padding = cfg.in_chans, cfg.patch, cfg.stride, cfg.padding
        self.proj = nn.Linear(cfg.patch_dim, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, dim, gh, gw]."""
        weight = self.proj.weight.view(-1, self.in_chans, self.patch, self.patch)
        return F.conv2d(x, weight, self.proj.bias, stride=self.stride, padding=self.padding)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        # SDPA scales by head_dim ** -0.5 (the reference's dim ** -0.5 is a known quirk, not copied).
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, d)))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim), nn.Dropout(dropout))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


def resize_pos_embed(pos: torch.Tensor, src_grid: tuple[int, int], dst_grid: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize the grid part of a [1, 1+N, D] position embedding; the class token's row is kept."""
    if src_grid == dst_grid:
        return pos
    cls_pos, grid_pos = pos[:, :1], pos[:, 1:]
    grid_pos = grid_pos.reshape(1, *src_grid, -1).permute(0, 3, 1, 2)
    grid_pos = F.interpolate(grid_pos, size=dst_grid, mode="bilinear", align_corners=False)
    return torch.cat([cls_pos, grid_pos.flatten(2).transpose(1, 2)], dim=1)


class FaceTransformer(nn.Module):
    """Patch embedding, class token, learned positions, pre-norm blocks, final LayerNorm.

    ``forward(x)`` returns the face embedding (class token after the final LayerNorm) [B, dim];
    ``forward_features(x)`` returns every token and the token grid, for dense heads.
    """

    def __init__(self, cfg: FaceTransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.grid = cfg.grid_size(cfg.image_size, cfg.image_size)
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.num_patches, cfg.dim))
        self.pos_drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_dim, cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Common ViT initialisation (truncated normal 0.02, zero biases); trains faster than torch's default."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def position_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """The [1, 1+gh*gw, dim] position embedding for a token grid (resized if it is not the native one)."""
        return resize_pos_embed(self.pos_embed, self.grid, grid)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Images [B, C, H, W] -> (all tokens after the final LayerNorm [B, 1+gh*gw, dim], (gh, gw))."""
        x = self.patch_embed(x)
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pos_drop(x + self.position_embedding(grid))
        for block in self.blocks:
            x = block(x)
        return self.norm(x), grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0][:, 0]

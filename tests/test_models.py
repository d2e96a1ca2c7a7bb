"""Face Transformer backbone, presets, parsing heads and the CosFace head."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from adaptive_de.errors import UserError
from adaptive_de.losses import CosFace
from adaptive_de.models import VIT_PRESETS as PRESETS
from adaptive_de.models import PatchEmbed, build_model, resize_pos_embed

PAPER_BACKBONE_PARAMS = {"vit-p8s8": 63_218_176, "vit-p10s8": 63_273_472, "vit-p12s8": 63_341_056}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(PAPER_BACKBONE_PARAMS))
def test_paper_backbone_parameter_counts(name):
    with torch.device("meta"):
        model = build_model(name, num_classes=11)
    assert n_params(model.backbone) == PAPER_BACKBONE_PARAMS[name]
    assert model.backbone.grid == (14, 14)


def test_tiny_is_under_a_million_parameters():
    assert n_params(build_model("tiny", num_classes=11)) < 1_000_000


# Every preset with its default head; both heads on a CPU preset and on the paper's 14x14 -> 112 upsampling.
PARSING_CASES = [(name, None) for name in PRESETS] + [("tiny", "linear"), ("small", "linear"), ("vit-p12s8", "linear")]


@pytest.mark.parametrize(("name", "head"), PARSING_CASES)
def test_parsing_output_shape(name, head):
    torch.manual_seed(0)
    model = build_model(name, num_classes=11, head=head).eval()
    size, batch = model.preset.image_size, 2 if name in ("tiny", "small") else 1
    with torch.no_grad():
        out = model(torch.randn(batch, 3, size, size))
    assert out.shape == (batch, 11, size, size)
    assert model.task == "parsing" and model.preset is PRESETS[name]


@pytest.mark.parametrize("name", ["tiny", "small", "vit-p12s8"])
def test_recognition_output_shape(name):
    model = build_model(name, num_classes=0, task="recognition").eval()
    size = model.preset.image_size
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, model.preset.dim) and model.task == "recognition"
    # The embedding is the class token after the final LayerNorm: zero mean per row (LN bias starts at 0).
    assert torch.allclose(out.mean(-1), torch.zeros(1), atol=1e-5)


@pytest.mark.parametrize("name", ["vit-p8s8", "vit-p10s8", "vit-p12s8", "tiny"])
def test_patch_embedding_equals_unfold_then_linear(name):
    cfg = PRESETS[name]
    torch.manual_seed(0)
    embed = PatchEmbed(cfg)
    x = torch.randn(2, 3, cfg.image_size, cfg.image_size)
    patches = torch.nn.Unfold(cfg.patch, stride=cfg.stride, padding=cfg.padding)(x).transpose(1, 2)
    want = embed.proj(patches)
    got = embed(x).flatten(2).transpose(1, 2)
    assert got.shape == want.shape == (2, cfg.num_patches, cfg.dim)
    assert torch.allclose(got, want, atol=1e-4)
    assert [p.shape for p in embed.parameters()] == [(cfg.dim, cfg.patch_dim), (cfg.dim,)]


def test_position_embedding_interpolation():
    torch.manual_seed(0)
    model = build_model("tiny", num_classes=11).eval()
    backbone = model.backbone
    native = backbone.position_embedding((16, 16))
    assert torch.equal(native, backbone.pos_embed)
    # The bilinear path itself is the identity at the native grid (align_corners=False).
    grid_only = resize_pos_embed(backbone.pos_embed, (16, 16), (16, 15))
    assert grid_only.shape == (1, 1 + 16 * 15, 64)
    assert torch.equal(grid_only[:, 0], backbone.pos_embed[:, 0])
    pos = backbone.pos_embed[:, 1:].reshape(1, 16, 16, 64).permute(0, 3, 1, 2)
    same = F.interpolate(pos, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(same, pos)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 96, 96))
        tokens, grid = backbone.forward_features(torch.randn(2, 3, 96, 96))
    assert out.shape == (2, 11, 96, 96)
    assert grid == (24, 24) and tokens.shape == (2, 1 + 24 * 24, 64)


def test_dropout_only_in_training():
    model = build_model(dataclasses.replace(PRESETS["tiny"], dropout=0.5), num_classes=3)
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="tiny"):
        build_model("huge", num_classes=11)
    with pytest.raises(UserError, match="progressive"):
        build_model("tiny", num_classes=11, head="mlp")
    with pytest.raises(UserError, match="recognition"):
        build_model("tiny", num_classes=11, task="detection")
    with pytest.raises(UserError):
        build_model("tiny", num_classes=0)


def test_cosface_matches_hand_computation():
    head = CosFace(3, 2, s=10.0, m=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    emb = torch.tensor([[3.0, 4.0, 0.0], [0.0, -1.0, 0.0]])
    # cosines: row 0 -> (0.6, 0.8), row 1 -> (0, -1); margin 0.5 on labels (1, 0).
    want = 10.0 * torch.tensor([[0.6, 0.8 - 0.5], [0.0 - 0.5, -1.0]])
    assert torch.allclose(head(emb, torch.tensor([1, 0])), want, atol=1e-6)
    assert torch.allclose(head(emb), 10.0 * torch.tensor([[0.6, 0.8], [0.0, -1.0]]), atol=1e-6)
    assert [p.shape for p in head.parameters()] == [(2, 3)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert head(emb.bfloat16(), torch.tensor([1, 0])).dtype == torch.float32  # margin-sized cosines stay fp32


def test_cosface_cross_entropy_decreases():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (64,))
    emb = 2 * torch.randn(4, 16)[labels] + torch.randn(64, 16)  # four noisy clusters
    head = CosFace(16, 4)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(head(emb, labels), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_tiny_trains_a_few_steps():
    torch.manual_seed(0)
    model = build_model("tiny", num_classes=3)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randn(4, 3, 64, 64)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]

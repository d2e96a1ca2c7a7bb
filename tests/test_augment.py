"""Augmentation: flips with label swaps, exact identity at magnitude 0, label integrity, a Kornia
peer check of the rotation, per-sample randomness, determinism, dtypes, policies and their specs."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adaptive_de.augment import (
    OPS,
    RANGES,
    LevelPolicy,
    NoAugment,
    RandAugment,
    TrivialAugment,
    apply_ops,
    color,
    geometric,
    hflip,
    make_policy,
)
from adaptive_de.data.labels import CELEBAMASK_HQ, LAPA
from adaptive_de.errors import UserError

SIZE = 24


def smooth_images(n: int, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    """Float images in [0.1, 0.9] with smooth content (so bilinear peers agree away from edges)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False) * 0.8 + 0.1


def block_labels(n: int, ids: tuple[int, ...], size: int = SIZE, seed: int = 0) -> torch.Tensor:
    """int64 label maps made of 4x4-pixel blocks with ids drawn from ``ids``."""
    g = torch.Generator().manual_seed(seed)
    blocks = torch.tensor(ids)[torch.randint(len(ids), (n, size // 4, size // 4), generator=g)]
    return blocks.repeat_interleave(4, 1).repeat_interleave(4, 2)


def one_op(name: str, values: list[float]) -> torch.Tensor:
    mags = torch.zeros(len(values), len(OPS))
    mags[:, OPS.index(name)] = torch.tensor(values)
    return mags


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def policies(scheme=LAPA):
    return [
        RandAugment(scheme=scheme),
        RandAugment(4, 10, scheme=scheme),
        TrivialAugment(scheme),
        LevelPolicy([4] * len(OPS), p=1.0, scheme=scheme),
        LevelPolicy({"rotate": 3, "hflip": 4, "erase": 2}, p=0.7, scheme=scheme),
    ]


POLICIES = policies()


def test_ops_order():
    assert OPS == ("rotate", "scale", "translate_x", "translate_y", "shear", "hflip", "brightness", "contrast",
                   "gamma", "saturation", "hue", "sharpness", "blur", "noise", "grayscale", "erase")
    assert set(RANGES) == set(OPS)


# ---------------------------------------------------------------------------------------------- flips

@pytest.mark.parametrize("scheme, swaps", [(LAPA, {2: 3, 4: 5}), (CELEBAMASK_HQ, {4: 5, 6: 7, 8: 9})])
def test_hflip_mirrors_and_swaps(scheme, swaps):
    swaps = swaps | {b: a for a, b in swaps.items()}
    images = smooth_images(2)
    labels = torch.arange(scheme.num_classes).repeat(2, 3, 1)  # every class, one per column
    out_images, out_labels = hflip(images, labels, scheme)
    assert torch.equal(out_images, images.flip(-1))
    expected = torch.tensor([swaps.get(i, i) for i in range(scheme.num_classes)]).flip(0).repeat(2, 3, 1)
    assert torch.equal(out_labels, expected)
    twice = hflip(*hflip(images, labels, scheme), scheme)
    assert torch.equal(twice[0], images) and torch.equal(twice[1], labels)


def test_hflip_keeps_label_dtype():
    labels = torch.tensor([[[2, 3, 4, 5]]], dtype=torch.uint8)
    _, out = hflip(torch.zeros(1, 3, 1, 4), labels, LAPA)
    assert out.dtype == torch.uint8 and out.tolist() == [[[4, 5, 2, 3]]]


def test_affine_flip_matches_hflip():
    images, labels = smooth_images(3), block_labels(3, tuple(range(11)))
    out_images, out_labels = apply_ops(images, labels, one_op("hflip", [1.0, 0.3, 0.9]), LAPA, generator=gen())
    ref_images, ref_labels = hflip(images, labels, LAPA)
    assert torch.equal(out_labels[[0, 2]], ref_labels[[0, 2]])
    torch.testing.assert_close(out_images[[0, 2]], ref_images[[0, 2]], atol=1e-5, rtol=0)
    # Magnitude <= 0.5 means no flip: sample 1 is untouched.
    assert torch.equal(out_images[1], images[1]) and torch.equal(out_labels[1], labels[1])


# ---------------------------------------------------------------------------------- exact identity

@pytest.mark.parametrize("name", OPS)
def test_magnitude_zero_is_exact_identity(name):
    images, labels = smooth_images(4), block_labels(4, (0, 1, 2, 3, 4, 5, 10))
    mags = one_op(name, [0.0, 1.0, 0.0, 0.8])  # a mixed batch: zeros must not be resampled or re-coloured
    out_images, out_labels = apply_ops(images, labels, mags, LAPA, generator=gen())
    for i in (0, 2):
        assert torch.equal(out_images[i], images[i]) and torch.equal(out_labels[i], labels[i])
    assert not torch.equal(out_images[1], images[1])
    # All zeros: nothing to do, the very same tensors come back.
    same = apply_ops(images, labels, torch.zeros(4, len(OPS)), LAPA, generator=gen())
    assert same[0] is images and same[1] is labels


def test_magnitudes_as_mapping_or_matrix():
    images, labels = smooth_images(3), block_labels(3, (0, 1, 2, 3))
    mapping = {"rotate": torch.tensor([0.0, 0.5, 1.0]), "blur": 0.4, "hflip": 2.0}  # values are clamped to [0, 1]
    matrix = torch.zeros(3, len(OPS))
    matrix[:, OPS.index("rotate")] = torch.tensor([0.0, 0.5, 1.0])
    matrix[:, OPS.index("blur")] = 0.4
    matrix[:, OPS.index("hflip")] = 1.0
    a = apply_ops(images, labels, mapping, LAPA, generator=gen())
    b = apply_ops(images, labels, matrix, LAPA, generator=gen())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="shape"):
        apply_ops(images, labels, torch.zeros(3, 4), LAPA)


def test_inputs_are_not_modified():
    images, labels = smooth_images(8), block_labels(8, (0, 1, 2, 3))
    before = images.clone(), labels.clone()
    for policy in POLICIES:
        policy(images, labels, generator=gen())
    assert torch.equal(images, before[0]) and torch.equal(labels, before[1])


# ----------------------------------------------------------------------------------- label integrity

@pytest.mark.parametrize("scheme", [LAPA, CELEBAMASK_HQ])
def test_labels_stay_in_the_id_set(scheme):
    ids = (1, 4, 6, 13) if scheme is CELEBAMASK_HQ else (1, 2, 5, 10)  # neighbours far apart: interpolation shows
    lut = scheme.flip_lut()
    allowed = {0, *ids, *(int(lut[i]) for i in ids)}
    images, labels = smooth_images(8), block_labels(8, ids)
    cases = [one_op(name, [1.0, 0.5, 0.25, 0.75] * 2) for name in OPS] + [torch.rand(8, len(OPS), generator=gen())]
    for mags in cases:
        _, out = apply_ops(images, labels, mags, scheme, generator=gen())
        assert set(out.unique().tolist()) <= allowed
    for policy in policies(scheme):
        _, out = policy(images, labels, generator=gen(1))
        assert set(out.unique().tolist()) <= allowed, policy


def test_erase_to_background_switch():
    images = torch.full((4, 3, SIZE, SIZE), 0.5)
    labels = torch.ones(4, SIZE, SIZE, dtype=torch.long)
    mags = one_op("erase", [1.0, 0.5, 0.2, 0.0])
    out_images, out_labels = apply_ops(images, labels, mags, LAPA, generator=gen())
    changed = (out_images != images).any(1)
    assert torch.equal(out_labels == 0, changed)  # background exactly where painted
    area = changed.flatten(1).float().mean(1)
    assert 0.15 < area[0] < 0.35 and 0.06 < area[1] < 0.2 and 0 < area[2] < 0.1 and area[3] == 0
    for i in range(3):  # one rectangle per image
        rows, cols = changed[i].any(1), changed[i].any(0)
        assert changed[i].sum() == rows.sum() * cols.sum()
    kept_images, kept_labels = apply_ops(images, labels, mags, LAPA, generator=gen(), erase_to_background=False)
    assert torch.equal(kept_images, out_images) and torch.equal(kept_labels, labels)


# -------------------------------------------------------------------------------------- geometry

def kornia_rotate(images, labels, angle):
    kt = pytest.importorskip("kornia.geometry.transform")
    angle = torch.full((images.shape[0],), float(angle))
    ref_images = kt.rotate(images, angle, mode="bilinear", align_corners=False)
    ref_labels = kt.rotate(labels.unsqueeze(1).float(), angle, mode="nearest", align_corners=False)
    return ref_images, ref_labels.squeeze(1).long()


def centre_mask(size: int = SIZE) -> torch.Tensor:
    """The disc inside the image that every rotation keeps inside, minus a 2-pixel margin."""
    pos = torch.arange(size) - (size - 1) / 2
    return (pos.view(-1, 1) ** 2 + pos.view(1, -1) ** 2).sqrt() < size / 2 - 2


def test_rotation_matches_kornia():
    """Positive angles turn the content counter-clockwise, as in Kornia."""
    images, labels = smooth_images(2), block_labels(2, (0, 1, 2, 3, 4, 5))
    angle = 25.0
    theta = geometric.affine_theta(torch.full((2,), angle), torch.ones(2), torch.zeros(2, 2), torch.zeros(2),
                                   torch.zeros(2, dtype=torch.bool), (SIZE, SIZE))
    ours_images, ours_labels = geometric.warp(images, labels, theta, None, LAPA)
    ref_images, ref_labels = kornia_rotate(images, labels, angle)
    torch.testing.assert_close(ours_images, ref_images, atol=1e-4, rtol=0)
    inside = centre_mask()  # away from the corners, where a pixel-boundary tie could round either way
    assert torch.equal(ours_labels[:, inside], ref_labels[:, inside])
    # Sanity of the sign itself: a point right of the centre moves up (y down) under +90°.
    theta = geometric.affine_theta(torch.tensor([90.0]), torch.ones(1), torch.zeros(1, 2), torch.zeros(1),
                                   torch.zeros(1, dtype=torch.bool), (SIZE, SIZE))
    dot = torch.zeros(1, 3, SIZE, SIZE)
    dot[..., SIZE // 2, SIZE - 3] = 1
    moved = geometric.warp(dot, torch.zeros(1, SIZE, SIZE, dtype=torch.long), theta, None, LAPA)[0]
    y, x = divmod(int(moved[0, 0].argmax()), SIZE)
    assert x == SIZE // 2 and y == 2


def test_rotate_op_uses_the_documented_range():
    images, labels = smooth_images(4), block_labels(4, (0, 1, 2, 3))
    m = 25.0 / RANGES["rotate"]
    out_images, out_labels = apply_ops(images, labels, one_op("rotate", [m] * 4), LAPA, generator=gen(3))
    plus, minus = kornia_rotate(images, labels, 25.0), kornia_rotate(images, labels, -25.0)
    for i in range(4):  # each sample turned by +25° or -25°
        errors = [(out_images[i] - ref[0][i]).abs().max() for ref in (plus, minus)]
        assert min(errors) < 1e-4


def test_translation_moves_by_whole_pixels():
    size = 20  # RANGES["translate_x"] * 20 = 4 px at magnitude 1
    images, labels = smooth_images(2, size), block_labels(2, (1, 2, 3, 4), size)
    out_images, out_labels = apply_ops(images, labels, one_op("translate_x", [1.0, 1.0]), LAPA, generator=gen())
    shift = round(RANGES["translate_x"] * size)
    keep = slice(shift, size - shift)
    for i in range(2):
        for s in (shift, -shift):
            if torch.equal(out_labels[i][:, keep], labels[i].roll(s, -1)[:, keep]):
                break
        else:
            pytest.fail(f"sample {i} is not shifted by ±{shift} px")
        torch.testing.assert_close(out_images[i][..., keep], images[i].roll(s, -1)[..., keep], atol=1e-5, rtol=0)
        uncovered = slice(0, shift) if s > 0 else slice(size - shift, size)
        assert (out_labels[i][:, uncovered] == 0).all() and out_images[i][..., uncovered].abs().max() < 1e-5


def test_scale_zooms_about_the_centre():
    images = torch.zeros(1, 3, SIZE, SIZE)
    images[..., 8:16, 8:16] = 1.0  # a centred square
    labels = (images[:, 0] > 0).long()
    _, out_labels = apply_ops(images, labels, one_op("scale", [1.0]), LAPA, generator=gen())
    area = out_labels.sum().item()
    assert math.isclose(area, 64 * RANGES["scale"] ** 2, rel_tol=0.3) or math.isclose(
        area, 64 / RANGES["scale"] ** 2, rel_tol=0.3)
    rows, cols = out_labels[0].nonzero().float().mean(0)
    assert abs(rows - 11.5) < 0.6 and abs(cols - 11.5) < 0.6


# ---------------------------------------------------------------------------------------- colour

def test_grayscale_gives_equal_channels():
    images = smooth_images(3)
    out, _ = apply_ops(images, block_labels(3, (0, 1)), one_op("grayscale", [1.0, 1.0, 1.0]), LAPA, generator=gen())
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    luma = (images * torch.tensor(color.LUMA).view(1, 3, 1, 1)).sum(1)
    torch.testing.assert_close(out[:, 0], luma, atol=1e-5, rtol=0)


def test_color_matrix_matches_the_definitions():
    x = smooth_images(1)
    flat = x.reshape(1, 3, -1)
    mean = color.mean_luma(x)
    one = torch.ones(1)

    def run(brightness=one, contrast=one, saturation=one, hue=0 * one, grayscale=0 * one):
        matrix, offset = color.color_matrices(brightness, contrast, saturation, hue, grayscale)
        return (matrix @ flat + offset.unsqueeze(2) * mean).view_as(x)

    torch.testing.assert_close(run(brightness=0.7 * one), x * 0.7)
    torch.testing.assert_close(run(contrast=0.6 * one), 0.6 * x + 0.4 * mean)
    grey = (x * torch.tensor(color.LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(run(saturation=1.5 * one), 1.5 * x - 0.5 * grey)
    torch.testing.assert_close(run(hue=torch.tensor([2 * math.pi])), x, atol=1e-5, rtol=0)
    # A hue turn keeps grey pixels grey and moves colourful ones.
    matrix, _ = color.color_matrices(one, one, one, torch.tensor([1.3]), 0 * one)
    grey_image = grey.expand_as(x)
    torch.testing.assert_close((matrix @ grey_image.reshape(1, 3, -1)).view_as(x), grey_image, atol=1e-5, rtol=0)
    assert (run(hue=torch.tensor([1.3])) - x).abs().max() > 0.05


def test_blur_preserves_flat_images_and_smooths():
    flat = torch.full((2, 3, 16, 16), 0.3)
    torch.testing.assert_close(color.gaussian_blur(flat, torch.tensor([0.5, 3.0])), flat)
    noisy = torch.rand(2, 3, 16, 16, generator=gen())
    out = color.gaussian_blur(noisy, torch.tensor([0.5, 2.0]))
    assert out[1].std() < out[0].std() < noisy.std()
    torch.testing.assert_close(out.mean((2, 3)), noisy.mean((2, 3)), atol=0.02, rtol=0)
    # Away from the borders it is the ordinary separable Gaussian convolution.
    taps = torch.arange(-6.0, 7.0)
    kernel = torch.exp(-0.5 * (taps / 1.5) ** 2)
    kernel /= kernel.sum()
    ref = F.conv2d(noisy.view(6, 1, 16, 16), kernel.view(1, 1, -1, 1))
    ref = F.conv2d(ref, kernel.view(1, 1, 1, -1)).view(2, 3, 4, 4)
    torch.testing.assert_close(color.gaussian_blur(noisy, torch.tensor([1.5, 1.5]))[..., 6:10, 6:10], ref,
                               atol=1e-4, rtol=0)


def test_sharpness_matches_the_pil_kernel():
    x = torch.rand(2, 3, 12, 12, generator=gen())
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13
    smooth = F.conv2d(x, kernel.expand(3, 1, 3, 3), groups=3)
    out = color.adjust_sharpness(x, torch.tensor([0.0, 1.5]))
    torch.testing.assert_close(out[0, :, 1:-1, 1:-1], smooth[0])
    torch.testing.assert_close(out[1, :, 1:-1, 1:-1], (1.5 * x[1, :, 1:-1, 1:-1] - 0.5 * smooth[1]).clamp(0, 1))
    border = torch.ones(12, 12, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    assert torch.equal(out[..., border], x[..., border])


def test_noise_has_the_requested_std():
    images = torch.full((2, 3, 32, 32), 0.5)
    out, _ = apply_ops(images, torch.zeros(2, 32, 32, dtype=torch.long), one_op("noise", [1.0, 0.5]), LAPA,
                       generator=gen())
    std = (out - images).flatten(1).std(1)
    torch.testing.assert_close(std, torch.tensor([0.1, 0.05]), atol=0.01, rtol=0)
    assert not torch.equal(out[0] - 0.5, 2 * (out[1] - 0.5))  # different bank windows


# ---------------------------------------------------------------------------------------- policies

@pytest.mark.parametrize("policy", [*POLICIES, NoAugment()], ids=repr)
def test_policy_dtypes(policy):
    images, labels = smooth_images(6), block_labels(6, (0, 1, 2, 3))
    out_images, out_labels = policy(images, labels, generator=gen())
    assert out_images.dtype == torch.float32 and out_labels.dtype == torch.int64
    assert out_images.shape == images.shape and out_labels.shape == labels.shape
    assert 0 <= out_images.min() and out_images.max() <= 1
    images8 = (images * 255).round().to(torch.uint8)
    for dtype in (torch.uint8, torch.int32):
        out8, out_labels8 = policy(images8, labels.to(dtype), generator=gen())
        assert out8.dtype == torch.uint8 and out_labels8.dtype == dtype
        # The uint8 path is the float path plus rounding.
        float_out, _ = policy(images8.float() / 255, labels, generator=gen())
        assert (out8.float() - float_out * 255).abs().max() <= 0.5 + 1e-3
        assert torch.equal(out_labels8.long(), policy(images8, labels, generator=gen())[1])


@pytest.mark.parametrize("policy", POLICIES, ids=repr)
def test_policy_determinism(policy):
    images, labels = smooth_images(8), block_labels(8, (0, 1, 2, 3))
    a = policy(images, labels, generator=gen(5))
    b = policy(images, labels, generator=gen(5))
    c = policy(images, labels, generator=gen(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_default_generator_is_torch_default():
    images, labels = smooth_images(4), block_labels(4, (0, 1))
    torch.manual_seed(11)
    a = TrivialAugment()(images, labels)
    torch.manual_seed(11)
    b = TrivialAugment()(images, labels)
    assert torch.equal(a[0], b[0])


@pytest.mark.parametrize("policy", [LevelPolicy({"rotate": 4, "brightness": 4}, p=1.0), TrivialAugment()], ids=repr)
def test_samples_get_their_own_magnitudes(policy):
    images = smooth_images(1).expand(16, -1, -1, -1).contiguous()
    labels = block_labels(1, (0, 1, 2)).expand(16, -1, -1).contiguous()
    out, _ = policy(images, labels, generator=gen())
    distinct = {tuple(o.flatten()[:64].tolist()) for o in out}
    assert len(distinct) > 8


@pytest.mark.parametrize("policy, n", [(RandAugment(2, 9), 2), (RandAugment(3, 5), 3), (TrivialAugment(), 1)],
                         ids=repr)
def test_ops_are_chosen_per_image(policy, n):
    mags = policy.magnitudes(64, gen())
    chosen = mags > 0
    assert (chosen.sum(1) == n).all() if isinstance(policy, RandAugment) else (chosen.sum(1) <= n).all()
    assert len({tuple(row.tolist()) for row in chosen}) > 10  # different op sets within one batch
    if isinstance(policy, RandAugment):
        assert torch.allclose(mags[chosen], torch.tensor(min(policy.m / 10, 1.0)))


def test_level_policy_magnitudes():
    policy = LevelPolicy({"rotate": 2, "blur": 4, "hflip": 4}, p=0.5)
    mags = policy.magnitudes(4000, gen())
    rotate, blur, flip = (mags[:, OPS.index(n)] for n in ("rotate", "blur", "hflip"))
    assert rotate.max() <= 0.5 and blur.max() > 0.9
    assert 0.45 < (rotate > 0).float().mean() < 0.55
    assert set(flip.unique().tolist()) == {0.0, 1.0} and 0.45 < flip.mean() < 0.55
    assert mags[:, [OPS.index(n) for n in OPS if n not in ("rotate", "blur", "hflip")]].eq(0).all()
    assert policy.levels == tuple(2 if n == "rotate" else 4 if n in ("blur", "hflip") else 0 for n in OPS)
    assert repr(policy) == "LevelPolicy({rotate=2, hflip=4, blur=4}, p=0.5, scheme='lapa')"


@pytest.mark.parametrize("levels, message", [
    ([1] * (len(OPS) - 1), "expected 16 levels"),
    ({"rotate": 1, "spin": 2}, "unknown op name"),
    ({"rotate": 5}, "'rotate' must be an integer in 0..4"),
    ({"blur": -1}, "'blur'"),
    ({"blur": 1.5}, "'blur'"),
    ({"blur": "2"}, "'blur'"),
])
def test_level_policy_validation(levels, message):
    with pytest.raises(ValueError, match=message):
        LevelPolicy(levels)


def test_level_policy_rejects_bad_p():
    with pytest.raises(ValueError, match="p must be in"):
        LevelPolicy([0] * len(OPS), p=1.5)


def test_make_policy():
    assert isinstance(make_policy("none"), NoAugment)
    ra = make_policy("randaugment:3,7", CELEBAMASK_HQ)
    assert isinstance(ra, RandAugment) and (ra.n, ra.m) == (3, 7) and ra.scheme is CELEBAMASK_HQ
    assert (make_policy("RandAugment").n, make_policy("randaugment").m) == (2, 9)
    assert isinstance(make_policy("trivialaugment"), TrivialAugment)
    levels = make_policy("levels:" + ",".join(str(i % 5) for i in range(len(OPS))))
    assert levels.levels == tuple(i % 5 for i in range(len(OPS)))


@pytest.mark.parametrize("spec", ["", "autoaugment", "randaugment:2", "randaugment:a,b", "levels:1,2",
                                  "levels:" + ",".join(["7"] * len(OPS)), "none:1", "randaugment:-1,3"])
def test_make_policy_rejects_bad_specs(spec):
    with pytest.raises(UserError, match="augmentation policy"):
        make_policy(spec)


def test_bad_batches_are_rejected():
    with pytest.raises(ValueError, match="images must be"):
        RandAugment()(torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be"):
        RandAugment()(torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="integer dtype"):
        RandAugment()(torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="unknown op"):
        apply_ops(torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long), {"twirl": 1.0})


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    images, labels = smooth_images(16, 32), block_labels(16, (0, 1, 2, 3, 4, 5), 32)
    for policy in POLICIES:
        cpu = policy(images, labels, generator=gen(2))
        cuda = policy(images.cuda(), labels.cuda(), generator=gen(2))
        assert cuda[0].is_cuda and cuda[1].is_cuda
        torch.testing.assert_close(cuda[0].cpu(), cpu[0], atol=2e-3, rtol=0)
        assert (cuda[1].cpu() == cpu[1]).float().mean() > 0.99

"""The synthetic benchmark: determinism, the train→test shift, and plausible label content."""
import math
from dataclasses import replace

import pytest
import torch

from adaptive_de.data.labels import LAPA
from adaptive_de.data.synthetic import NARROW, WIDE, nuisances_for, render_faces


def test_shapes_dtypes_and_ids():
    images, labels = render_faces(5, size=48, seed=3, split="val")
    assert images.shape == (5, 3, 48, 48) and images.dtype == torch.uint8
    assert labels.shape == (5, 48, 48) and labels.dtype == torch.uint8
    assert int(labels.max()) < LAPA.num_classes


def test_deterministic_and_batch_size_independent():
    a_im, a_lb = render_faces(10, seed=7, split="test")
    b_im, b_lb = render_faces(10, seed=7, split="test")
    assert torch.equal(a_im, b_im) and torch.equal(a_lb, b_lb)
    # Faces 4..7 rendered on their own equal the same faces rendered inside a batch of 10.
    c_im, c_lb = render_faces(4, seed=7, split="test", start=4)
    assert torch.equal(a_im[4:8], c_im) and torch.equal(a_lb[4:8], c_lb)
    # Another seed or split gives other faces.
    assert not torch.equal(a_im, render_faces(10, seed=8, split="test")[0])
    assert not torch.equal(a_im, render_faces(10, seed=7, split="val")[0])


def test_chunking_does_not_change_faces(monkeypatch):
    import adaptive_de.data.synthetic as synthetic
    ref = render_faces(12, seed=1, split="test")
    monkeypatch.setattr(synthetic, "_CHUNK_ELEMS", 5 * 64 * 64)  # chunks of 5 faces
    again = render_faces(12, seed=1, split="test")
    assert all(torch.equal(a, b) for a, b in zip(ref, again, strict=True))


def _eye_axis_deg(labels: torch.Tensor) -> torch.Tensor:
    """Per-image angle of the line from the right eye's centroid to the left eye's (0 = upright).

    Images where an eye is hidden are dropped.
    """
    n, h, w = labels.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")

    def centroid(cls):
        m = (labels == cls).float()
        area = m.sum((1, 2))
        return (m * xs).sum((1, 2)) / area.clamp(min=1), (m * ys).sum((1, 2)) / area.clamp(min=1), area > 3

    lx, ly, lok = centroid(4)
    rx, ry, rok = centroid(5)
    return torch.rad2deg(torch.atan2(ly - ry, lx - rx))[lok & rok]


def test_train_and_test_nuisance_ranges_differ():
    tr_im, tr_lb = render_faces(200, split="train")
    te_im, te_lb = render_faces(200, split="test")
    tr_angle, te_angle = _eye_axis_deg(tr_lb), _eye_axis_deg(te_lb)
    brightness = lambda im: im.float().mean((1, 2, 3))  # noqa: E731
    print(f"\norientation std: train {tr_angle.std():.1f} deg, test {te_angle.std():.1f} deg;"
          f" brightness std: train {brightness(tr_im).std():.1f}, test {brightness(te_im).std():.1f}")
    assert te_angle.std() > 2.5 * tr_angle.std()
    assert tr_angle.abs().max() < 12 and te_angle.abs().max() > 25
    assert brightness(te_im).std() > 1.5 * brightness(tr_im).std()
    # Test faces are sometimes occluded (WIDE.occlusion of them), train faces never: rendering the
    # same faces without occluders changes exactly the occluded ones.
    _, clear_lb = render_faces(200, split="test", nuisances=replace(WIDE, occlusion=0.0))
    occluded = (clear_lb != te_lb).flatten(1).any(1).float().mean()
    assert 0.3 * WIDE.occlusion < occluded < 2 * WIDE.occlusion and NARROW.occlusion == 0


def test_shift_zero_gives_one_distribution():
    assert nuisances_for("test", shift=0.0) == nuisances_for("train") == NARROW
    assert nuisances_for("val", shift=1.0) == WIDE
    half = nuisances_for("test", shift=0.5)
    assert math.isclose(half.rotation_deg, (NARROW.rotation_deg + WIDE.rotation_deg) / 2)
    with pytest.raises(ValueError):
        nuisances_for("holdout")


def test_all_classes_occur_with_plausible_frequencies():
    _, labels = render_faces(300, split="train")
    freq = torch.bincount(labels.flatten().long(), minlength=LAPA.num_classes).float()
    freq /= freq.sum()
    print("\nclass pixel frequencies:", {c: round(float(f), 4) for c, f in zip(LAPA.classes, freq, strict=True)})
    assert (freq > 0).all()
    assert 0.4 < freq[1] < 0.7  # face skin fills most of the frame
    assert 0.1 < freq[10] < 0.35  # hair
    for c in (2, 3, 4, 5, 7, 9):  # brows, eyes, lips: small but present
        assert 0.002 < freq[c] < 0.02, LAPA.classes[c]
    assert abs(freq[2] - freq[3]) < 0.2 * freq[2] and abs(freq[4] - freq[5]) < 0.2 * freq[4]  # symmetric
    assert 0.0005 < freq[8] < 0.01  # inner mouth: only open mouths


def test_left_is_the_subjects_left():
    """LaPa's left eye/brow (ids 4, 2) lie on the image's right half for upright faces."""
    _, labels = render_faces(50, split="train")
    cols = torch.arange(labels.shape[-1], dtype=torch.float32)
    for left, right in LAPA.flip_pairs:
        lx = ((labels == left).float() * cols).sum() / (labels == left).sum()
        rx = ((labels == right).float() * cols).sum() / (labels == right).sum()
        assert lx > rx + 10


def test_faces_fill_the_frame():
    """At scale 1 the skin spans 60-75% of the image width (what a 64 px model needs)."""
    ranges = NARROW.lerp(NARROW, 0.0)
    ranges = replace(ranges, scale=(1.0, 1.0), rotation_deg=0.0, yaw=0.0, shift=0.0, occlusion=0.0)
    _, labels = render_faces(40, nuisances=ranges)
    face = (labels >= 1) & (labels <= 9)
    width = face.any(1).float().sum(1) / labels.shape[-1]
    assert 0.58 < float(width.min()) and float(width.max()) < 0.78

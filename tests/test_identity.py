"""Synthetic identities (``render_faces(identities=...)``) and the verification benchmark's pieces."""
import math

import pytest
import torch

from adaptive_de.data.synthetic import IDENTITY_TRAITS, _Draws, render_faces
from adaptive_de.losses.cosface import CosFace
from adaptive_de.models import build_model
from benchmarks.identity import (
    QUICK,
    best_threshold,
    identity_faces,
    identity_sheet,
    roc_auc,
    train_recognition,
    verification_pairs,
    verify,
)

IDS = torch.tensor([0, 0, 1, 1, 2, 0])  # faces 0, 1, 5 are one person; 2, 3 another
POSE = ("rot", "scale", "tx", "ty", "yaw", "light_dir", "bg_r", "cloth_r", "mouth_open", "gaze", "occ", "hair_texx")


def test_traits_follow_the_identity_and_nuisances_the_face():
    d = _Draws.for_faces(0, "val", torch.arange(len(IDS)), IDS)
    for name in IDENTITY_TRAITS:
        v = d.uniform(name)
        assert v[0] == v[1] == v[5] and v[2] == v[3], name
        assert len({float(v[0]), float(v[2]), float(v[4])}) == 3, name  # other identities draw otherwise
    for name in POSE:
        assert len(set(d.uniform(name).tolist())) == len(IDS), name


def test_channel_jitter_names_are_traits():
    # _pick jitters each channel under name + r/g/b: those must travel with the identity too.
    assert {f"{p}{c}" for p in ("skin", "hair", "iris") for c in "rgb"} <= IDENTITY_TRAITS
    assert "hair_texx" not in IDENTITY_TRAITS and "gap" not in IDENTITY_TRAITS


def test_take_keeps_identity_keys():
    d = _Draws.for_faces(3, "test", torch.arange(len(IDS)), IDS)
    idx = torch.tensor([5, 2, 0])
    for name in ("skin", "face_rx", "yaw"):
        assert torch.equal(d.take(idx).uniform(name), d.uniform(name)[idx])  # view of a parent
        fresh = _Draws.for_faces(3, "test", torch.arange(len(IDS)), IDS).take(idx)
        assert torch.equal(fresh.uniform(name), d.uniform(name)[idx])  # hashed directly from sliced keys
        assert torch.equal(d.take(slice(1, 4)).uniform(name), d.uniform(name)[1:4])


def test_without_identities_faces_are_unchanged():
    d, plain = _Draws.for_faces(1, "val", torch.arange(4), None), _Draws.for_faces(1, "val", torch.arange(4))
    assert all(torch.equal(d.uniform(n), plain.uniform(n)) for n in ("skin", "yaw"))
    # Identities equal to the face indices are a different key space: the faces change.
    a, _ = render_faces(4, size=32, seed=1, split="val")
    b, _ = render_faces(4, size=32, seed=1, split="val", identities=torch.arange(4))
    assert not torch.equal(a, b)


def test_render_with_identities_is_batch_independent_and_checked():
    ids = torch.tensor([7, 7, 9, 9])
    a, la = render_faces(4, size=32, seed=2, split="val", identities=ids)
    b, lb = render_faces(2, size=32, seed=2, split="val", start=2, identities=ids[2:])
    assert torch.equal(a[2:], b) and torch.equal(la[2:], lb)
    with pytest.raises(ValueError, match="identities"):
        render_faces(4, size=32, identities=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="identities"):
        render_faces(2, size=32, identities=torch.zeros(2))


def test_verify_separated_and_random_embeddings():
    ids = torch.arange(20).repeat_interleave(5)
    separated = torch.nn.functional.one_hot(ids, 20).float() + 0.01 * torch.randn(len(ids), 20)
    r = verify(separated, ids, folds=10)
    assert r["accuracy"] == 1.0 and r["auc"] == 1.0
    assert r["pairs"] == {"same": 20 * 10, "different": 20 * 10}
    noise = verify(torch.randn(len(ids), 64, generator=torch.Generator().manual_seed(0)), ids, folds=10)
    assert abs(noise["accuracy"] - 0.5) < 0.1 and abs(noise["auc"] - 0.5) < 0.1


def test_roc_auc_and_threshold_by_hand():
    same = torch.tensor([True, True, False, False])
    assert roc_auc(torch.tensor([0.9, 0.8, 0.1, 0.2]), same) == 1.0
    assert roc_auc(torch.tensor([0.1, 0.2, 0.9, 0.8]), same) == 0.0
    assert roc_auc(torch.tensor([0.5, 0.5, 0.5, 0.5]), same) == 0.5  # ties count one half
    assert roc_auc(torch.tensor([0.9, 0.3, 0.5, 0.1]), same) == 0.75
    assert best_threshold(torch.tensor([0.9, 0.8, 0.1, 0.2]), same) == pytest.approx(0.5)
    # A threshold cannot split equal scores: cutting between the two 0.7s would "score" 4/4, the real best is 3/4.
    scores, same = torch.tensor([0.7, 0.7, 0.2, 0.1]), torch.tensor([True, False, False, False])
    assert ((scores > best_threshold(scores, same)) == same).float().mean() == 0.75


def test_verification_pairs_balanced_and_distinct():
    ids = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    i, j, same = verification_pairs(ids, torch.Generator().manual_seed(0))
    assert int(same.sum()) == 3 + 1 + 3 and int((~same).sum()) == 7
    assert torch.equal(ids[i] == ids[j], same) and bool((i < j).all())
    assert len({(a, b) for a, b in zip(i.tolist(), j.tolist(), strict=True)}) == len(i)


def test_training_smoke():
    torch.manual_seed(0)
    images, ids = identity_faces(4, 3, split="val", settings=QUICK)
    assert images.shape == (12, 3, QUICK.size, QUICK.size) and ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    model = build_model("tiny", num_classes=0, task="recognition")
    head = CosFace(model.embed_dim, 4)
    before = head.weight.detach().clone()
    losses = train_recognition(model, head, images, ids, steps=3, batch=8, lr=1e-3, warmup=0.3,
                               weight_decay=0.05, seed=0)
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert not torch.equal(before, head.weight)
    assert identity_sheet(images, ids, rows=2, cols=8).shape == (3, 2 + 2 * (64 + 2), 2 + 3 * (64 + 2))

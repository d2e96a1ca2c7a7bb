"""Samplers: empirical frequencies follow their weights; the loss-prioritised one moves to hard images."""
import pytest
import torch

from adaptive_de.data.sampling import (
    ClassBalancedSampler,
    LossPrioritisedSampler,
    MixtureSampler,
    UniformSampler,
    make_sampler,
)


def frequencies(sampler, n_items: int, draws: int = 200_000) -> torch.Tensor:
    idx = sampler.draw(draws, torch.Generator().manual_seed(0))
    return torch.bincount(idx, minlength=n_items).double() / draws


def labels_with_rare_class() -> torch.Tensor:
    """4 images: 0 all background, 1 mostly class 1, 2 and 3 with a few pixels of rare class 2."""
    labels = torch.zeros(4, 8, 8, dtype=torch.uint8)
    labels[1, :6] = 1
    labels[2, :2, :2] = 2
    labels[3, :1, :1] = 2
    return labels


def test_uniform_frequencies():
    f = frequencies(UniformSampler(5), 5)
    assert torch.allclose(f, torch.full((5,), 0.2, dtype=torch.float64), atol=0.005)


def test_class_balanced_weights_follow_rare_content():
    s = ClassBalancedSampler(labels_with_rare_class(), num_classes=3)
    p = s.probabilities()
    assert p[2] > p[3] > p[0] and p[1] > p[0]  # rare-class pixels raise an image's weight
    # Hand computation of w_i = sum_c share_ic * freq_c ** -0.5.
    lb = labels_with_rare_class()
    counts = torch.stack([torch.bincount(x.flatten().long(), minlength=3) for x in lb]).double()
    freq = counts.sum(0) / counts.sum()
    w = (counts / 64) @ freq.pow(-0.5)
    assert torch.allclose(p, w / w.sum())
    assert torch.allclose(frequencies(s, 4), p, atol=0.005)


def test_loss_prioritised_shifts_to_high_loss_images():
    s = LossPrioritisedSampler(4, temperature=0.5)
    assert torch.allclose(s.probabilities(), torch.full((4,), 0.25, dtype=torch.float64))
    for _ in range(20):
        s.update(torch.tensor([0, 1, 2, 3]), torch.tensor([0.1, 0.2, 0.3, 2.0]))
    p = s.probabilities()
    assert p.argmax() == 3 and p[3] > 0.9
    expected = torch.softmax(torch.tensor([0.1, 0.2, 0.3, 2.0], dtype=torch.float64) / 0.5, 0)
    assert torch.allclose(p, expected, atol=1e-6)  # the EMA of a constant loss is that loss
    assert torch.allclose(frequencies(s, 4), p, atol=0.005)


def test_unseen_images_count_as_hardest():
    s = LossPrioritisedSampler(3)
    s.update(torch.tensor([0, 1]), torch.tensor([0.5, 1.0]))
    p = s.probabilities()
    assert p[2] == p[1] > p[0]


def test_non_finite_losses_leave_the_averages_alone():
    s = LossPrioritisedSampler(3)
    s.update(torch.tensor([0, 1]), torch.tensor([0.5, 1.0]))
    before = s.state_dict()
    s.update(torch.tensor([0, 2]), torch.tensor([float("nan"), float("inf")]))
    assert torch.equal(s.state_dict()["ema"], before["ema"]) and torch.equal(s.state_dict()["seen"], before["seen"])
    assert torch.isfinite(s.probabilities()).all()


def test_mixture_is_the_weighted_sum_and_validates():
    lb = labels_with_rare_class()
    m = MixtureSampler(lb, 3, coefficients=(1.0, 1.0, 0.0))
    expected = 0.5 * torch.full((4,), 0.25, dtype=torch.float64) + 0.5 * ClassBalancedSampler(lb, 3).probabilities()
    assert torch.allclose(m.probabilities(), expected)
    assert torch.allclose(frequencies(m, 4), expected, atol=0.005)
    for bad in ((1, 0), (-1, 1, 1), (0, 0, 0)):
        with pytest.raises(ValueError):
            m.set_coefficients(bad)
    assert torch.equal(make_sampler("class_balanced", lb, 3).coefficients, torch.tensor([0.0, 1.0, 0.0],
                                                                                       dtype=torch.float64))


def test_state_round_trip():
    m = MixtureSampler(labels_with_rare_class(), 3, coefficients=(0, 0, 1))
    m.update(torch.tensor([1, 2]), torch.tensor([3.0, 1.0]))
    other = MixtureSampler(labels_with_rare_class(), 3)
    other.load_state_dict(m.state_dict())
    assert torch.equal(other.probabilities(), m.probabilities())

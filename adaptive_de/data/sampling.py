"""Which training images a batch is drawn from: uniform, class-balanced, loss-prioritised, or a mix.

Every sampler is a distribution over the N training images (``probabilities()``) and draws with
replacement from it. ``MixtureSampler`` mixes the three with coefficients that the agent sets each
round. Weights live on the CPU (N floats); drawn indices are moved to the data's device by the
trainer, so one generator serves CPU and CUDA runs alike.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

SAMPLERS = ("uniform", "class_balanced", "loss_prioritised")


class Sampler:
    """A distribution over training images. ``update`` lets samplers learn from per-image losses."""

    def probabilities(self) -> torch.Tensor:
        """float64 [N], summing to 1."""
        raise NotImplementedError

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """int64 [n] image indices, drawn with replacement."""
        return torch.multinomial(self.probabilities(), n, replacement=True, generator=generator)

    def update(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        """Observe the per-image training losses of a batch (ignored by most samplers)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class UniformSampler(Sampler):
    def __init__(self, num_items: int):
        self.num_items = num_items

    def probabilities(self) -> torch.Tensor:
        return torch.full((self.num_items,), 1.0 / self.num_items, dtype=torch.float64)

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randint(self.num_items, (n,), generator=generator)


class ClassBalancedSampler(Sampler):
    """Images weighted by their rare-class content: w_i = Σ_c share_ic · (1 / freq_c)^power.

    ``share_ic`` is the fraction of image i's pixels in class c and ``freq_c`` the class's pixel
    frequency over the set, so an image full of eyes and lips outweighs one of skin and background.
    """

    def __init__(self, labels: torch.Tensor, num_classes: int, power: float = 0.5):
        # ids past the classes (an ignore id) are not counted
        counts = torch.stack([torch.bincount(lb.flatten().long(), minlength=num_classes)[:num_classes]
                              for lb in labels.cpu()])
        share = counts.double() / counts.sum(1, keepdim=True)
        freq = counts.sum(0).double() / counts.sum()
        rarity = torch.where(freq > 0, freq.clamp(min=1e-12) ** -power, torch.zeros_like(freq))
        weights = share @ rarity
        self._p = weights / weights.sum()

    def probabilities(self) -> torch.Tensor:
        return self._p


class LossPrioritisedSampler(Sampler):
    """Weights ∝ exp(loss_i / τ) from an exponential moving average of each image's training loss.

    Images not yet seen carry the largest loss observed so far, so they are drawn early. The averages
    live on the device of the losses they observe, so ``update`` never waits for a GPU; only drawing
    from this sampler reads them back.
    """

    def __init__(self, num_items: int, temperature: float = 0.5, momentum: float = 0.9,
                 device: torch.device | str = "cpu"):
        self.temperature, self.momentum = temperature, momentum
        self.ema = torch.zeros(num_items, dtype=torch.float64, device=device)
        self.seen = torch.zeros(num_items, dtype=torch.bool, device=device)

    def update(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        if self.ema.device != losses.device:
            self.ema, self.seen = self.ema.to(losses.device), self.seen.to(losses.device)
        indices, losses = indices.to(losses.device), losses.detach().double()
        seen, ema = self.seen[indices], self.ema[indices]
        new = self.momentum * torch.where(seen, ema, losses) + (1 - self.momentum) * losses
        finite = torch.isfinite(losses)  # a non-finite step (which the trainer does not apply) teaches nothing
        self.ema[indices] = torch.where(finite, new, ema)
        self.seen[indices] = seen | finite

    def probabilities(self) -> torch.Tensor:
        ema, seen = self.ema.cpu(), self.seen.cpu()
        if not seen.any():
            return torch.full_like(ema, 1.0 / len(ema))
        loss = torch.where(seen, ema, ema[seen].max())
        return torch.softmax(loss / self.temperature, 0)

    def state_dict(self) -> dict:
        return {"ema": self.ema.cpu().clone(), "seen": self.seen.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        device = self.ema.device
        self.ema, self.seen = state["ema"].to(device).clone(), state["seen"].to(device).clone()


class MixtureSampler(Sampler):
    """A mixture of the uniform, class-balanced and loss-prioritised samplers (in ``SAMPLERS`` order)."""

    def __init__(self, labels: torch.Tensor, num_classes: int, coefficients: Sequence[float] = (1.0, 0.0, 0.0)):
        n = len(labels)
        self.components = (UniformSampler(n), ClassBalancedSampler(labels, num_classes),
                           LossPrioritisedSampler(n, device=labels.device))
        self.set_coefficients(coefficients)

    def set_coefficients(self, coefficients: Sequence[float]) -> None:
        c = torch.as_tensor(coefficients, dtype=torch.float64)
        if c.shape != (len(SAMPLERS),) or (c < 0).any() or c.sum() <= 0:
            raise ValueError(f"need {len(SAMPLERS)} non-negative mixture coefficients ({', '.join(SAMPLERS)}) "
                             f"with a positive sum, got {list(coefficients)}")
        self.coefficients = c / c.sum()

    def probabilities(self) -> torch.Tensor:
        return sum(c * s.probabilities() for c, s in zip(self.coefficients, self.components, strict=True) if c > 0)

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.coefficients[0] == 1.0:  # the common case, without building N weights
            return self.components[0].draw(n, generator)
        return super().draw(n, generator)

    def update(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        for s in self.components:
            s.update(indices, losses)

    def state_dict(self) -> dict:
        return {"coefficients": self.coefficients.clone(), "loss_prioritised": self.components[2].state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.coefficients = state["coefficients"].clone()
        self.components[2].load_state_dict(state["loss_prioritised"])


def make_sampler(name: str, labels: torch.Tensor, num_classes: int) -> Sampler:
    """A sampler by name (one of ``SAMPLERS``) over the training labels [N, H, W]."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    coefficients = [float(name == s) for s in SAMPLERS]
    return MixtureSampler(labels, num_classes, coefficients)

"""Env overhead: one ``env.step()`` against a bare PyTorch loop doing the same training and evaluation.

The env step trains K steps with an active ``LevelPolicy`` and the sampler mixture, then scores the
fixed validation subset; the bare loop trains the same model preset for K steps on uniformly drawn,
un-augmented batches and scores the same images, with no env, agent, augmentation or logging.
Target (issue 7): ratio <= 1.10.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from adaptive_de.metrics import ConfusionAccumulator
from adaptive_de.models import build_model
from adaptive_de.trainer import normalise

DATA = "synth:train=500,val=100,test=100"


def bare_round(images, labels, val_images, val_labels, *, preset: str, steps: int, batch: int,
               generator: torch.Generator, model=None, optimizer=None) -> tuple:
    """K plain CE steps and one evaluation; returns (model, optimizer) to reuse across rounds."""
    if model is None:
        model = build_model(preset, num_classes=11)
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(images), (batch,), generator=generator)
        loss = F.cross_entropy(model(normalise(images[idx])), labels[idx].long())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    acc = ConfusionAccumulator(11, images.device)
    with torch.no_grad():
        for lo in range(0, len(val_images), 250):
            acc.update(model(normalise(val_images[lo:lo + 250])).argmax(1), val_labels[lo:lo + 250].long())
    acc.compute()
    return model, optimizer


def overhead_ratio(*, rounds: int = 7, steps: int = 25, quick: bool = False) -> dict:
    from envs import FaceParsingAugmentEnv  # the env pulls in gymnasium; keep the import local to this benchmark

    rounds = 2 if quick else rounds
    env = FaceParsingAugmentEnv("cpu", data=DATA, start="scratch", inner_loss="ce", steps_per_round=steps,
                                rounds=rounds + 1, val_subset=100)
    action = np.array([2] * 16 + [3])  # every op at level 2, the sampler mixture
    train, val = env.trainer.data["train"], env.trainer.data["val"]
    args = (train.images, train.labels, val.images[:100], val.labels[:100])
    kw = {"preset": env.config.model, "steps": steps, "batch": env.config.batch_size,
          "generator": torch.Generator().manual_seed(0)}
    env.reset(seed=0)
    env.step(action)  # warm-ups
    model, optimizer = bare_round(*args, **kw)
    # Alternate the two, so that a change in the machine's speed during the run hits both alike.
    env_times, bare_times = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        env.step(action)
        env_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        bare_round(*args, **kw, model=model, optimizer=optimizer)
        bare_times.append(time.perf_counter() - start)
    env_s, bare_s = statistics.median(env_times), statistics.median(bare_times)
    return {"overhead_ratio": env_s / bare_s, "env_step_s": env_s, "bare_loop_s": bare_s,
            "inner_steps_per_env_step": steps, "val_images": 100}

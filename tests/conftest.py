"""Shared fixtures: small in-memory synthetic splits, a private cache folder for every test run, and simulated
``probe`` runs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adaptive_de.augment import MAX_LEVEL, OPS
from adaptive_de.data import FaceParsingSet
from adaptive_de.data.labels import LAPA
from adaptive_de.data.synthetic import render_faces


def synth_splits(n_train: int = 64, n_eval: int = 32, *, size: int = 64, shift: float = 1.0,
                 splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, FaceParsingSet]:
    """Rendered directly (no cache): ``n_train`` train faces and ``n_eval`` faces per other split."""
    out = {}
    for split in splits:
        images, labels = render_faces(n_train if split == "train" else n_eval, size=size, split=split, shift=shift)
        out[split] = FaceParsingSet(images, labels, LAPA, [str(i) for i in range(len(images))])
    return out


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the tests' synth and checkpoint caches out of the user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ADAPTIVE_DE_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Test-sized batches gain nothing from a second thread, and busy-waiting threads crawl on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


PROBE_MEMBERS, PROBE_ROUNDS = 4, 16  # the 16-round studies' population


def probe_runs(effects: np.ndarray, runs: int, sigma: float | np.ndarray, seed: int = 0) -> list:
    """Schedules of ``runs`` probe runs whose member-round reward is ``levels @ effects`` plus noise of std ``sigma``,
    centred within each round as the population's rewards are. ``effects`` may be one row per round, and ``sigma``
    one value per round."""
    rng = np.random.default_rng(seed)
    effects, sigma = np.broadcast_to(effects, (PROBE_ROUNDS, len(OPS))), np.broadcast_to(sigma, (PROBE_ROUNDS,))
    out = []
    for _ in range(runs):
        rounds = []
        for t in range(PROBE_ROUNDS):
            levels = rng.integers(MAX_LEVEL + 1, size=(PROBE_MEMBERS, len(OPS)))
            noise = rng.normal(0, sigma[t], PROBE_MEMBERS) + rng.normal(0, 5)  # each member's, and the round's
            rewards = levels @ effects[t] + noise
            rounds.append({"levels": levels.tolist(), "sampler": ["uniform"] * PROBE_MEMBERS,
                           "rewards": (rewards - rewards.mean()).tolist()})
        out.append(rounds)
    return out


def write_probe_study(path, runs, seeds, compute=2304, **fields):
    """A study file holding only what ``fitted``'s readers need: the probe's seeds, compute and schedules, and any
    other study ``fields`` (``preset``, ``env``) a reading asks for."""
    path.write_text(json.dumps({"seeds": seeds, "methods": {"probe": {"compute_inner_steps": compute}},
                                "schedules": {"probe": runs}, **fields}))
    return str(path)

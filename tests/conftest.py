"""Shared fixtures: small in-memory synthetic splits, and a private cache folder for every test run."""
from __future__ import annotations

import pytest
import torch

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

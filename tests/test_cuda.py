"""CUDA paths (skipped without a GPU): data and augmentation on the device, bf16 autocast, REINFORCE."""
import math
import traceback
import warnings
from pathlib import Path

import pytest
import torch

from adaptive_de.augment import LevelPolicy
from adaptive_de.config import TrainConfig
from adaptive_de.trainer import GRAPH_WARMUP, InnerTrainer
from tests.conftest import synth_splits

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("loss", ["ce", "ce_then_reinforce"])
def test_trainer_on_cuda(loss):
    t = InnerTrainer(TrainConfig(loss=loss, steps=6, tune_from=0.5, batch_size=8, device="cuda"),
                     data=synth_splits(32, 16))
    assert t.device.type == "cuda" and t.data["train"].images.is_cuda
    stats = t.train_round(LevelPolicy([2] * 16), steps=6)
    assert torch.isfinite(torch.tensor(stats["loss"]))
    scores = t.evaluate("val")
    assert 0.0 <= scores["mean_f1"] <= 1.0 and len(scores["f1"]) == 11


def test_cuda_state_round_trip(tmp_path):
    data = synth_splits(32, 16)
    a = InnerTrainer(TrainConfig(steps=4, batch_size=8, device="cuda"), data=data)
    a.train_round(steps=2)
    a.save(tmp_path / "t.pt")
    b = InnerTrainer(TrainConfig(steps=4, batch_size=8, device="cuda"), data=data)
    b.load(tmp_path / "t.pt")
    assert b.step == 2 and all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                                 b.model.state_dict().values(), strict=True))


def sync_sites(fn):
    """Run ``fn()`` in sync-debug mode; returns its result and, for each synchronizing CUDA call, where in this
    project's code it was made (innermost frames first), so that a failure says which line waits."""
    sites = []

    def record(message, *args, **kwargs):
        if "synchronizing" in str(message):
            ours = [f for f in traceback.extract_stack()[:-1] if "adaptive_de" in f.filename]
            sites.append(" <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(ours[-3:])))

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = record  # restored by catch_warnings
            result = fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return result, sites


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("loss", ["ce", "reinforce"])
def test_train_round_syncs_once_per_round(loss, compiled):
    """After a warm-up round (lazy optimiser state, the noise bank, compilation, the CUDA graph's recording),
    a round of 4 steps with every augmentation op and a class-balanced/uniform sampler mix waits for the GPU
    once: its read-out. On an H200 on 2026-12-04 it waited twice, down from 6-7: the read-out and
    ``totals[3] = -1`` (a blocking copy of a CPU scalar), since made a ``fill_``."""
    t = InnerTrainer(TrainConfig(loss=loss, steps=12, batch_size=8, device="cuda", compile=compiled),
                     data=synth_splits(32, 16))
    t.sampler.set_coefficients((0.5, 0.5, 0.0))
    policy = LevelPolicy([4] * 16)
    t.train_round(policy, steps=GRAPH_WARMUP + 2)
    stats, sites = sync_sites(lambda: t.train_round(policy, steps=4))
    assert len(sites) == 1, sites
    assert math.isfinite(stats["loss"]) and stats["steps"] == 4


@pytest.mark.parametrize("compiled", [False, True])
def test_cuda_graph_step_matches_eager(compiled):
    """The recorded cross-entropy step gives the eager step's numbers, reads the learning rate of each step
    (not the one it was recorded with), and is recorded again after an exploit loads new optimiser state."""
    data = synth_splits(32, 16)

    def make(graph):
        return InnerTrainer(TrainConfig(steps=40, batch_size=8, device="cuda", compile=compiled, cuda_graph=graph,
                                        seed=3), data=data)

    graphed, eager = make(True), make(False)
    policy = LevelPolicy([2] * 16)
    for steps in (GRAPH_WARMUP + 1, 4):
        got, ref = graphed.train_round(policy, steps=steps), eager.train_round(policy, steps=steps)
        assert got["loss"] == pytest.approx(ref["loss"], rel=1e-3)
        assert got["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-2)
    assert graphed._graph is not None and eager._graph is None
    for a, b in zip(graphed.model.parameters(), eager.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-3)  # a few steps of at most lr = 2e-3 each apart

    # A learning rate of 0 must leave the weights as they are, in the graph as in an eager step.
    before = [p.detach().clone() for p in graphed.model.parameters()]
    graphed.lr_at = lambda step: 0.0
    graphed.train_round(policy, steps=2)
    assert all(torch.equal(a, b) for a, b in zip(before, graphed.model.parameters(), strict=True))
    del graphed.lr_at

    # Loading a state (here the eager trainer's, RNGs included) makes new Adam moments: the graph is recorded
    # afresh and matches again.
    graphed.load_state_dict(eager.state_dict())
    assert graphed._graph is None
    for steps in (GRAPH_WARMUP + 1, 3):
        got, ref = graphed.train_round(policy, steps=steps), eager.train_round(policy, steps=steps)
        assert got["loss"] == pytest.approx(ref["loss"], rel=1e-3)
    assert graphed._graph is not None

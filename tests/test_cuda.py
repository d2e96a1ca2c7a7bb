"""CUDA paths (skipped without a GPU): data and augmentation on the device, bf16 autocast, REINFORCE."""
import pytest
import torch

from adaptive_de.augment import LevelPolicy
from adaptive_de.config import TrainConfig
from adaptive_de.trainer import InnerTrainer
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

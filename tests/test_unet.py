"""The ResNet-18 U-Net baseline and plug-in models: torchvision's layout, ImageNet weights, shapes, the trainer."""
import math

import pytest
import torch

from adaptive_de.config import TrainConfig
from adaptive_de.errors import UserError, run_cli
from adaptive_de.models import UNetResNet18, build_model, default_image_size
from adaptive_de.train import build_parser, main
from adaptive_de.trainer import InnerTrainer, param_groups

# torchvision's resnet18 has 11,689,512 parameters, of which fc (512 x 1000 + 1000) holds 513,000.
RESNET18_PARAMS_WITHOUT_FC = 11_689_512 - 513_000
PLUGINS = "tests.model_plugins"
DATA = "synth:train=64,val=16,test=16"


def torchvision_resnet18_keys() -> list[str]:
    """torchvision ``resnet18().state_dict()``'s keys in order, without ``fc.weight`` and ``fc.bias``."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *(f"bn1.{s}" for s in bn)]
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}."
            keys += [p + "conv1.weight", *(f"{p}bn1.{s}" for s in bn), p + "conv2.weight", *(f"{p}bn2.{s}" for s in bn)]
            if layer > 1 and block == 0:  # the first block of layers 2-4 halves the resolution and widens
                keys += [p + "downsample.0.weight", *(f"{p}downsample.1.{s}" for s in bn)]
    return keys


def encoder_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return UNetResNet18(11).encoder.state_dict()


def test_encoder_has_torchvision_resnet18_parameter_count_and_names():
    encoder = UNetResNet18(11).encoder
    assert sum(p.numel() for p in encoder.parameters()) == RESNET18_PARAMS_WITHOUT_FC == 11_176_512
    keys = torchvision_resnet18_keys()
    assert len(keys) == 122 - 2  # torchvision's 122 entries less fc.weight and fc.bias
    assert list(encoder.state_dict()) == keys
    state = encoder.state_dict()
    assert state["conv1.weight"].shape == (64, 3, 7, 7)
    assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert state["layer4.1.conv2.weight"].shape == (512, 512, 3, 3)


def test_encoder_initialisation_is_torchvisions():
    torch.manual_seed(0)
    encoder = UNetResNet18(11).encoder
    # kaiming_normal_(mode="fan_out", nonlinearity="relu"): std sqrt(2 / (out_channels * kh * kw))
    for name, fan_out in (("conv1", 64 * 7 * 7), ("layer3.0.conv2", 256 * 9), ("layer4.0.downsample.0", 512)):
        std = float(encoder.get_submodule(name).weight.detach().std())
        assert math.isclose(std, math.sqrt(2 / fan_out), rel_tol=0.05), (name, std)
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))


def test_torchvision_state_dict_loads_into_the_encoder(tmp_path):
    want = encoder_state(seed=1)
    # torchvision's ImageNet file: with the classifier, and from before BatchNorm counted its batches
    file = {k: v for k, v in want.items() if not k.endswith("num_batches_tracked")}
    file |= {"fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)}
    torch.save(file, tmp_path / "resnet18.pth")
    torch.manual_seed(2)
    model = build_model("unet-r18", num_classes=11, weights=str(tmp_path / "resnet18.pth"))
    got = model.encoder.state_dict()
    assert not torch.equal(encoder_state(seed=2)["conv1.weight"], want["conv1.weight"])  # the seeds differ
    assert all(torch.equal(got[k], want[k]) for k in want if not k.endswith("num_batches_tracked"))
    # The full encoder state (num_batches_tracked included) round-trips too.
    torch.save(want, tmp_path / "encoder.pth")
    got = build_model("unet-r18", num_classes=11, weights=str(tmp_path / "encoder.pth")).encoder.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_unfitting_encoder_weights_are_user_errors(tmp_path):
    state = encoder_state(seed=0)
    torch.save({**state, "layer3.1.bn2.weight": torch.ones(128)}, tmp_path / "shape.pth")
    with pytest.raises(UserError, match=r"layer3\.1\.bn2\.weight has shape \(128,\), resnet18 expects \(256,\)"):
        build_model("unet-r18", num_classes=11, weights=str(tmp_path / "shape.pth"))
    torch.save({k: v for k, v in state.items() if k != "layer1.0.conv1.weight"} | {"head.weight": torch.ones(1)},
               tmp_path / "keys.pth")
    with pytest.raises(UserError, match=r"missing layer1\.0\.conv1\.weight; unexpected head\.weight"):
        build_model("unet-r18", num_classes=11, weights=str(tmp_path / "keys.pth"))
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(UserError, match="cannot load encoder weights"):
        build_model("unet-r18", num_classes=11, weights=str(tmp_path / "junk.pth"))
    with pytest.raises(UserError, match="do not exist"):
        build_model("unet-r18", num_classes=11, weights=str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="weights apply to model 'unet-r18' only"):
        build_model("tiny", num_classes=11, weights=str(tmp_path / "shape.pth"))


@pytest.mark.parametrize("size", [(64, 64), (96, 96), (112, 112), (64, 96)])
def test_unet_returns_logits_at_the_input_size(size):
    torch.manual_seed(0)
    model = build_model("unet-r18", num_classes=11, image_size=size[0]).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 11, *size) and torch.isfinite(out).all()
    assert model.training is False and model.task == "parsing"


def test_build_checks_and_keeps_modes_and_the_global_rng():
    model = build_model(f"{PLUGINS}:good", num_classes=5, image_size=96)
    assert type(model).__name__ == "TinyConvNet" and model.training  # built in train mode, as the factory made it
    torch.manual_seed(0)
    model = build_model(f"{PLUGINS}:noisy", num_classes=5)
    after_build = torch.rand(1)
    torch.manual_seed(0)
    model.__class__(5)  # the same initialisation draws, without the probe
    assert torch.equal(after_build, torch.rand(1))  # the probe's randn_like did not advance the global RNG
    assert model.training and model.features.training and not model.frozen.training
    unet = build_model("unet-r18", num_classes=3)
    assert unet.training and all(m.training for m in unet.modules())
    assert all(int(m.num_batches_tracked) == 0 for m in unet.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_bad_models_are_user_errors():
    with pytest.raises(UserError) as e:
        build_model(f"{PLUGINS}:half", num_classes=5)
    assert str(e.value) == (f"model {PLUGINS}:half returns shape (2, 5, 32, 32) for input (2, 3, 64, 64); "
                            "a parsing model must return per-pixel logits (2, 5, 64, 64)")
    with pytest.raises(UserError, match=r"input \(2, 3, 80, 80\).*\(2, 5, 80, 80\)"):
        build_model(f"{PLUGINS}:half", num_classes=5, image_size=80)
    for spec, message in [
        ("no.such:mod", "cannot import module 'no.such'"),
        (f"{PLUGINS}:missing", "has no attribute 'missing'"),
        (f"{PLUGINS}:", "has no attribute ''"),
        (f"{PLUGINS}:NOT_CALLABLE", "is a int, not a callable factory"),
        (f"{PLUGINS}:not_a_module", "returned a dict, not a torch.nn.Module"),
        (f"{PLUGINS}:broken", r"failed \(ValueError: no weights for this face\)$"),
    ]:
        with pytest.raises(UserError, match=message):
            build_model(spec, num_classes=5)
    with pytest.raises(UserError, match="head applies to Face Transformer presets only"):
        build_model("unet-r18", num_classes=11, head="linear")
    with pytest.raises(UserError, match="task 'recognition' needs a Face Transformer preset"):
        build_model("unet-r18", num_classes=0, task="recognition")
    with pytest.raises(UserError, match="unknown model preset 'unet-r50'.*unet-r18"):
        build_model("unet-r50", num_classes=11)


def test_default_image_size():
    assert default_image_size("vit-p8s8") == 112 and default_image_size("tiny") == 64
    assert default_image_size("unet-r18") == default_image_size(f"{PLUGINS}:good") == 64
    with pytest.raises(UserError, match="unknown model preset 'huge'"):
        default_image_size("huge")


def test_cnn_weight_decay_spares_batchnorm_and_biases():
    model = build_model("unet-r18", num_classes=11)
    decay, no_decay = param_groups(model, 0.05)
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [p for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in (m.weight, m.bias)]
    assert {id(p) for p in decay["params"]} == {id(p) for p in convs}
    assert {id(p) for p in no_decay["params"]} == {id(p) for p in [*norms, model.classifier.bias]}
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.05, 0.0)


def test_cli_lists_the_cnn_and_encoder_weights():
    text = build_parser().format_help()
    assert "unet-r18" in text and "--encoder-weights" in text and "package.module:factory" in text


@pytest.mark.parametrize("args, message", [
    (["--model", "no.such:mod"], "model 'no.such:mod': cannot import module 'no.such'"),
    (["--model", "unet-r18", "--head", "linear"], "head applies to Face Transformer presets only"),
    (["--model", "unet-r18", "--encoder-weights", "/no/such.pth"], "encoder weights /no/such.pth do not exist"),
    (["--model", "huge"], "unknown model preset 'huge'"),
])
def test_cli_model_errors_are_one_line_and_exit_2(args, message, capsys):
    assert run_cli(main, ["--data", "synth:train=8,val=8,test=8", "--steps", "1", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


def make(preset: str, **kw) -> InnerTrainer:
    config = TrainConfig(model=preset, data=DATA, batch_size=8, device="cpu", eval_batch_size=16, **kw)
    return InnerTrainer(config, splits=("train", "val"))


def test_unet_trains_in_the_inner_trainer():
    t = make("unet-r18", steps=16, lr=2e-3)
    assert t.image_size == 64 and t.data["train"].images.shape[-1] == 64
    untrained = t.evaluate("val")["mean_f1"]
    losses = [t.train_round(steps=4)["loss"] for _ in range(4)]
    assert losses[-1] < 0.8 * losses[0], losses  # measured: 2.16 -> 1.54
    scores = t.evaluate("val")
    # measured: 0.007 -> 0.17 (skin 0.79); predicting all background scores 0
    assert len(scores["f1"]) == t.num_classes and scores["mean_f1"] > max(0.1, 5 * untrained), scores


def test_plugin_trains_one_round_and_caches_under_a_safe_name(tmp_path):
    t = make(f"{PLUGINS}:good", steps=4)
    before = [p.detach().clone() for p in t.model.parameters()]
    stats = t.train_round(steps=4)
    assert t.step == 4 and math.isfinite(stats["loss"])
    assert not all(torch.equal(a, b) for a, b in zip(before, t.model.parameters(), strict=True))
    path = make(f"{PLUGINS}:good", steps=4).load_pretrained(steps=2, cache_dir=tmp_path)
    assert path.parent == tmp_path and path.name.startswith("tests.model_plugins_good-") and path.is_file()

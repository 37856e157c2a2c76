"""Pretrained weights: files, run folders, the torch hub cache, offline errors, and every family's key layout.

No test touches the network: ``socket.connect`` is disabled for the whole module, and downloads are
replaced by functions that raise, as they do offline.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import urllib.error

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import medclass.models.pretrained as pretrained_mod
from medclass.errors import CheckpointError, ConfigError
from medclass.models import create_model, get_model_card, list_models, load_pretrained
from medclass.models._builder import fold_linear_grid
from medclass.models.checkpoint import save_weights
from medclass.models.pretrained import adapt_input_channels

WITH_IMAGENET = [n for n in list_models(spatial_dims=2) if get_model_card(n).imagenet_weights]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in the unit tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def resnet18_imagenet_like() -> dict[str, torch.Tensor]:
    """torchvision's resnet18 state dict (3 channels, 7x7 stem, 1000 classes): what the published file holds."""
    torch.manual_seed(0)
    return torchvision.models.resnet18().state_dict()


def _offline_download(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_weights_file_into_one_channel_model(tmp_path, resnet18_imagenet_like, caplog):
    sd = resnet18_imagenet_like
    torch.save(sd, tmp_path / "resnet18.pth")
    with caplog.at_level(logging.INFO, logger="medclass.models.pretrained"):
        model = create_model("resnet18", num_classes=3, in_chans=1, input_size=224,
                             pretrained=tmp_path / "resnet18.pth")
    got = model.state_dict()
    assert got["conv1.weight"].shape == (64, 1, 7, 7)
    assert torch.allclose(got["conv1.weight"], sd["conv1.weight"].sum(1, keepdim=True))  # RGB filters summed
    assert torch.equal(got["layer3.1.conv2.weight"], sd["layer3.1.conv2.weight"])
    assert torch.equal(got["bn1.running_var"], sd["bn1.running_var"])
    assert got["fc.weight"].shape == (3, 512)  # 1000-class head dropped, re-initialised
    assert "conv1.weight (3 -> 1 channels)" in caplog.text and "fc.weight, fc.bias (classifier" in caplog.text


def test_three_to_one_channel_sum_gives_the_gray_rgb_output():
    w = torch.randn(8, 3, 3, 3)
    gray = torch.rand(2, 1, 10, 10)
    one = torch.nn.functional.conv2d(gray, adapt_input_channels(w, 1))
    three = torch.nn.functional.conv2d(gray.expand(-1, 3, -1, -1), w)
    assert torch.allclose(one, three, atol=1e-5)
    # 1 -> 3: the filter repeated and divided by 3, so a gray image copied to RGB gives the 1-channel output
    w1 = torch.randn(8, 1, 3, 3)
    assert torch.allclose(torch.nn.functional.conv2d(gray.expand(-1, 3, -1, -1), adapt_input_channels(w1, 3)),
                          torch.nn.functional.conv2d(gray, w1), atol=1e-5)


def test_small_stem_skips_the_imagenet_stem_and_wrappers_are_unwrapped(tmp_path, resnet18_imagenet_like):
    sd = {f"module.{k}": v for k, v in resnet18_imagenet_like.items()}  # DataParallel prefix
    torch.save({"state_dict": sd, "epoch": 90}, tmp_path / "wrapped.pt")
    model = create_model("resnet18", num_classes=2, in_chans=1, input_size=28)
    init_conv1 = model.conv1.weight.detach().clone()
    report = load_pretrained(model, "resnet18", tmp_path / "wrapped.pt")
    assert "conv1.weight" in report.skipped and "small-image stem" in report.skipped["conv1.weight"]
    assert torch.equal(model.conv1.weight, init_conv1)
    assert torch.equal(model.layer1[0].conv1.weight, resnet18_imagenet_like["layer1.0.conv1.weight"])
    assert set(report.skipped) == {"conv1.weight", "fc.weight", "fc.bias"} and not report.unexpected


def test_safetensors_file_and_same_shape_head_is_kept(tmp_path, resnet18_imagenet_like):
    save_file(resnet18_imagenet_like, str(tmp_path / "w.safetensors"))
    model = create_model("resnet18", num_classes=1000, in_chans=3, input_size=224,
                         pretrained=tmp_path / "w.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(v, resnet18_imagenet_like[k]), k


def test_imagenet_from_the_torch_hub_cache_without_network(tmp_path, monkeypatch, resnet18_imagenet_like):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline_download)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    fake = tmp_path / "hub" / "checkpoints" / "fake.pth"
    torch.save(resnet18_imagenet_like, fake)
    # cached files are hash-checked, so name the fake by its own SHA-256 and point the weights' URL at that name
    name = f"resnet18-{hashlib.sha256(fake.read_bytes()).hexdigest()[:8]}.pth"
    fake.rename(fake.with_name(name))
    monkeypatch.setattr(torchvision.models.ResNet18_Weights.DEFAULT.value, "url", f"https://example.org/{name}")
    model = create_model("resnet18", num_classes=2, in_chans=3, input_size=224, pretrained="imagenet")
    assert torch.equal(model.conv1.weight, resnet18_imagenet_like["conv1.weight"])


def test_imagenet_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline_download)
    with pytest.raises(ConfigError) as e:
        create_model("densenet121", num_classes=2, pretrained="imagenet")
    msg = str(e.value)
    assert "densenet121" in msg and "Temporary failure in name resolution" in msg
    assert str(tmp_path / "empty" / "hub" / "checkpoints" / "densenet121-a639ec97.pth") in msg
    assert "https://download.pytorch.org/models/densenet121-a639ec97.pth" in msg and "model.pretrained=PATH" in msg


def test_timm_imagenet_offline_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # read at import: patch it
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline_download)
    with pytest.raises(ConfigError, match=r"vit_tiny .*Hugging Face cache.*https://huggingface.co/timm/"
                                          r"vit_tiny_patch16_224.augreg_in21k_ft_in1k/resolve/main/model.safetensors "
                                          r"by hand.*model.pretrained=PATH"):
        create_model("vit_tiny", num_classes=2, pretrained=True)


def test_damaged_cache_file_says_to_delete_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline_download)
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="resnet18-f37072fd.pth', is not the published file: its SHA-256 begins "
                                              "with [0-9a-f]{8}, but the file name says f37072fd.*Delete the file"):
        create_model("resnet18", num_classes=2, pretrained="imagenet")


def test_run_folder(tmp_path):
    torch.manual_seed(1)
    source = create_model("resnet9", num_classes=2, in_chans=1, width=8)
    run = tmp_path / "run"
    save_weights(run / "checkpoints" / "best.safetensors", source.state_dict(), {"model": "resnet9", "epoch": 3})
    model = create_model("resnet9", num_classes=4, in_chans=3, width=8, pretrained=run)
    w = source.stem[0][0].weight
    assert torch.allclose(model.stem[0][0].weight, w.repeat(1, 3, 1, 1) / 3)  # 1 -> 3 channels: repeated / 3
    assert torch.equal(model.layer3[0][0].weight, source.layer3[0][0].weight)
    assert model.fc.weight.shape == (4, 64)

    with pytest.raises(ConfigError, match="trained resnet9, but model.name is resnet18. Set model.name=resnet9"):
        create_model("resnet18", num_classes=2, pretrained=run)
    (tmp_path / "not_a_run").mkdir()
    with pytest.raises(ConfigError, match=r"not a finished medclass run: '.*best.safetensors' does not exist"):
        create_model("resnet9", num_classes=2, pretrained=tmp_path / "not_a_run")


def test_weights_that_do_not_fit_are_refused(tmp_path):
    torch.save(create_model("resnet9", num_classes=2, width=8).state_dict(), tmp_path / "w8.pth")
    with pytest.raises(ConfigError, match=r"do not fit resnet9, in_chans=1: 40 tensors have other shapes "
                                          r"\(stem.0.0.weight: \(8, 1, 3, 3\) in the weights, \(16, 1, 3, 3\) in the "
                                          r"model;.*another model.width"):
        create_model("resnet9", num_classes=2, width=16, pretrained=tmp_path / "w8.pth")
    torch.save(create_model("resnet18", num_classes=2).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ConfigError, match=r"do not fit resnet34, in_chans=1: 80 tensors of the model are missing "
                                          r"\(layer1.2"):
        create_model("resnet34", num_classes=2, pretrained=tmp_path / "r18.pth")


def test_bad_sources():
    with pytest.raises(ConfigError, match="'imagnet' is neither.*Did you mean 'imagenet'"):
        create_model("resnet18", num_classes=2, pretrained="imagnet")
    with pytest.raises(ConfigError, match="lenet5 has no ImageNet weights. Models with them: alexnet"):
        create_model("lenet5", num_classes=2, pretrained="imagenet")


def test_fc6_folding_is_exact_for_an_upsampled_map():
    w = torch.randn(16, 4 * 6 * 6)
    small = torch.randn(3, 4, 2, 2)
    big = small.repeat_interleave(3, 2).repeat_interleave(3, 3)  # 2x2 -> 6x6, as a pooled larger image would be
    assert torch.allclose(big.flatten(1) @ w.T, small.flatten(1) @ fold_linear_grid(w, 4, 6, 2).T, atol=1e-4)


def _published_layout(name: str) -> dict[str, torch.Tensor]:
    """A state dict with the keys and shapes of the published ImageNet file (meta tensors: no memory)."""
    lib, _, ident = get_model_card(name).imagenet_weights.partition(":")
    if lib == "torchvision":
        extra = {"aux_logits": True, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
        return torchvision.models.get_model(name, weights=None, **extra).state_dict()
    return timm.create_model(ident.split(".")[0], pretrained=False).state_dict()


@pytest.mark.parametrize("name", WITH_IMAGENET)
def test_every_family_accepts_its_published_weights(name, monkeypatch):
    with torch.device("meta"):
        published = _published_layout(name)
    monkeypatch.setattr(pretrained_mod, "imagenet_state_dict", lambda n: published)
    with torch.device("meta"):
        model = create_model(name, num_classes=1000, in_chans=3, input_size=299 if name == "inception_v3" else 224)
        report = load_pretrained(model, name, "imagenet")
        # the ImageNet network: everything fits as it is
        assert report.loaded and not report.skipped and not report.adapted and not report.unexpected
        model = create_model(name, num_classes=3, in_chans=1, input_size=28)
        report = load_pretrained(model, name, "imagenet", in_chans=1, num_classes=3)
    card = get_model_card(name)
    assert {k.rsplit(".", 1)[0] for k in report.skipped} <= {card.classifier, card.first_conv}
    assert any(k.startswith(card.classifier) for k in report.skipped)
    assert len(report.adapted) + sum(k.startswith(card.first_conv) for k in report.skipped) >= 1

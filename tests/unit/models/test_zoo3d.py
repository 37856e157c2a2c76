"""The registry sweep for volume models (``card.spatial_dims == 3``), and the 3D building blocks' invariants.

Every volume model builds, runs forward and backward on ``(N, 1, D, H, W)`` at 16³ and 28³ (batch 2, 3
classes; width 8 where the family has a width, to stay fast), and honours its card like the 2D models in
``test_zoo.py``. Then: ACS convolutions reproduce the 2D convolution on the axial plane and keep 2D state
dicts; inflated kernels reproduce the 2D network on a stack of identical slices; slice pooling is invariant to
the order of the slices; 2.5D planes are the planes they claim to be; ImageNet-layout weights load.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torchvision
from torch import nn

from medclass.errors import ConfigError
from medclass.models import create_model, get_model_card, list_models, load_pretrained
from medclass.models._convert3d import ACSConv, acs_split, convert_to_3d
from medclass.models._registry import get_builder

VOLUME_MODELS = list_models(spatial_dims=3)


def _build(name: str, size: int, in_chans: int = 1, num_classes: int = 3) -> nn.Module:
    width = {"width": 8} if "width" in inspect.signature(get_builder(name)).parameters else {}
    return create_model(name, num_classes=num_classes, in_chans=in_chans, input_size=size, **width)


def _hooked(model: nn.Module, path: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    got = []
    handle = model.get_submodule(path).register_forward_hook(lambda m, a, o: got.append(o))
    try:
        out = model(x)
    finally:
        handle.remove()
    return got[0], out


def test_the_sweeps_split_the_registry():
    assert set(VOLUME_MODELS) >= {"resnet10_3d", "resnet18_3d", "cnn3d_small", "resnet18_acs", "resnet18_25d",
                                  "slices_resnet9_attn", "slices_resnet9_mean", "slices_resnet9_max"}
    assert not set(VOLUME_MODELS) & set(list_models(spatial_dims=2))
    assert sorted(VOLUME_MODELS + list_models(spatial_dims=2)) == list_models()
    assert all(get_model_card(n).spatial_dims == 2 for n in list_models("vgg*"))


@pytest.mark.parametrize("size", [16, 28])
@pytest.mark.parametrize("name", VOLUME_MODELS)
def test_forward_backward_and_card(name, size):
    torch.manual_seed(0)
    card = get_model_card(name)
    model = _build(name, size)
    x = torch.randn(2, 1, size, size, size)

    model.train()
    out = model(x)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out.square().sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"

    modules = dict(model.named_modules())
    for path in (card.classifier, card.cam_layer, card.first_conv, *card.blocks):
        assert path == "" or path in modules, f"{name}'s card names {path!r}, which the model does not have"
    fc = modules[card.classifier]
    assert isinstance(fc, nn.Linear) and fc.out_features == 3
    first = modules[card.first_conv]
    assert first.in_channels == (3 if card.family == "2.5d" else 1)  # 2.5D: three planes of one channel

    model.eval()
    with torch.no_grad():
        cam, logits = _hooked(model, card.cam_layer, x)
        feats = model.forward_features(x)
        assert torch.equal(cam, feats), "cam_layer must output the last spatial feature map"
        assert cam.ndim == (4 if card.family == "2.5d" else 5)  # 2.5D maps are 2D; the others are volumes
        assert torch.allclose(model.forward_head(feats), logits, atol=1e-5)
        assert model.forward_head(feats, pre_logits=True).shape == (2, fc.in_features)
        if card.supports_cam:  # CAM's premise: logits = classifier(global average of the cam_layer map)
            assert torch.allclose(fc(cam.flatten(2).mean(2)), logits, atol=1e-4)


@pytest.mark.parametrize("name", VOLUME_MODELS)
def test_large_smallest_and_three_channel_inputs_on_meta_device(name):
    card = get_model_card(name)
    assert card.spatial_dims == 3 and card.input_size == 28
    for size, in_chans in [(64, 3), (card.min_input_size, 1)]:
        with torch.device("meta"):
            model = create_model(name, num_classes=5, in_chans=in_chans, input_size=size).eval()
            feats = model.forward_features(torch.empty(2, in_chans, size, size, size))
            assert min(feats.shape[2:]) >= 1, (size, in_chans)
            assert model.forward_head(feats).shape == (2, 5), (size, in_chans)
    with pytest.raises(ConfigError, match=f"at least {card.min_input_size} px"):
        create_model(name, num_classes=2, input_size=card.min_input_size - 1)


def test_volume_models_refuse_images():
    with pytest.raises((ValueError, RuntimeError)):
        create_model("resnet18_acs", num_classes=2)(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"expects volumes \(N, C, D, H, W\)"):
        create_model("slices_resnet9_attn", num_classes=2)(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ConfigError, match="resnet18_acs has no option 'width'"):
        create_model("resnet18_acs", num_classes=2, width=8)


# --- ACS and inflated convolutions ----------------------------------------------------------------------


def test_acs_conv_is_the_2d_convolution_on_axial_planes_and_keeps_2d_state():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 7, 3, stride=1, padding=1)
    acs = ACSConv.from_conv2d(conv)
    assert acs.split == acs_split(7) == (3, 2, 2)
    assert {k: v.shape for k, v in acs.state_dict().items()} == {k: v.shape for k, v in conv.state_dict().items()}
    x = torch.randn(2, 4, 5, 6, 6)
    out = acs(x)
    assert out.shape == (2, 7, 5, 6, 6)
    for d in range(5):  # the axial group (first 3 channels) is the 2D convolution of each slice
        assert torch.allclose(out[:, :3, d], conv(x[:, :, d])[:, :3], atol=1e-5)
    # the coronal group applies the same 2D kernels in the (D, W) plane, the sagittal group in (D, H)
    assert torch.allclose(out[:, 3:5, :, 2], conv(x[:, :, :, 2])[:, 3:5], atol=1e-5)
    assert torch.allclose(out[:, 5:, :, :, 4], conv(x[..., 4])[:, 5:], atol=1e-5)
    strided = ACSConv.from_conv2d(nn.Conv2d(4, 6, 7, stride=2, padding=3))
    assert strided(x).shape == (2, 6, 3, 3, 3)
    with pytest.raises(ValueError, match="odd kernel"):
        ACSConv(4, 6, 2)


def test_inflated_kernels_reproduce_the_2d_convolution_on_identical_slices():
    torch.manual_seed(0)
    conv2d = nn.Conv2d(1, 4, 3, padding=1)
    image = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        expected = conv2d(image)
        net = convert_to_3d(nn.Sequential(conv2d, nn.BatchNorm2d(4), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1)), "3d")
        out = net[0](image.unsqueeze(2).expand(2, 1, 6, 8, 8))
    assert isinstance(net[0], nn.Conv3d) and net[0].kernel_size == (3, 3, 3)
    for d in range(1, 5):  # interior slices see three identical neighbours: exactly the 2D result
        assert torch.allclose(out[:, :, d], expected, atol=1e-5)
    assert isinstance(net[1], nn.BatchNorm3d) and isinstance(net[2], nn.MaxPool3d)
    assert isinstance(net[3], nn.AdaptiveAvgPool3d) and net[3].output_size == 1
    with pytest.raises(ValueError, match="cannot convert InstanceNorm2d"):
        convert_to_3d(nn.Sequential(nn.InstanceNorm2d(3)))


@pytest.mark.filterwarnings("ignore:.*meta parameter:UserWarning")  # loading into meta tensors copies nothing
def test_imagenet_layout_weights_load_into_acs_and_25d_models(monkeypatch):
    import medclass.models.pretrained as pretrained_mod

    torch.manual_seed(0)
    published = torchvision.models.resnet18().state_dict()  # the keys and shapes of torchvision's file
    monkeypatch.setattr(pretrained_mod, "imagenet_state_dict", lambda n: published)
    with torch.device("meta"):  # the ImageNet network in 3D: every tensor fits as it is
        model = create_model("resnet18_acs", num_classes=1000, in_chans=3, input_size=224)
        report = load_pretrained(model, "resnet18_acs", "imagenet")
        assert report.loaded and not report.skipped and not report.adapted and not report.unexpected
    for name in ("resnet18_acs", "resnet18_25d"):
        model = create_model(name, num_classes=2, in_chans=1, input_size=28)
        report = load_pretrained(model, name, "imagenet", in_chans=1, num_classes=2)
        prefix = "backbone." if name == "resnet18_25d" else ""
        assert torch.equal(model.get_submodule(f"{prefix}layer4").state_dict()["1.conv2.weight"],
                           published["layer4.1.conv2.weight"])
        assert {k.rsplit(".", 1)[0] for k in report.skipped} == {f"{prefix}fc", f"{prefix}conv1"}  # 3x3 stem, 2 classes


# --- slice pooling and 2.5D ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["slices_resnet9_attn", "slices_resnet9_mean", "slices_resnet9_max"])
def test_slice_pooling_ignores_the_order_of_slices_and_reports_slice_weights(name):
    torch.manual_seed(0)
    model = _build(name, 16).eval()
    x = torch.randn(3, 1, 12, 16, 16)
    perm = torch.randperm(12)
    with torch.no_grad():
        logits, weights = model.forward_with_attention(x)
        shuffled, weights_shuffled = model.forward_with_attention(x[:, :, perm])
        assert torch.allclose(logits, model(x), atol=1e-5) and torch.equal(model.last_attention, weights)
    assert torch.allclose(logits, shuffled, atol=1e-5)  # a bag of slices: order does not matter
    assert weights.shape == (3, 12) and torch.allclose(weights.sum(1), torch.ones(3), atol=1e-5)
    assert torch.allclose(weights_shuffled, weights[:, perm], atol=1e-5)  # the weights follow their slices
    if name.endswith("mean"):
        assert torch.allclose(weights, torch.full((3, 12), 1 / 12))


def test_25d_planes_are_the_middle_planes_or_projections():
    x = torch.randn(2, 1, 6, 8, 8)
    ortho = create_model("resnet9_25d", num_classes=2, input_size=8)
    p = ortho.to_planes(x)
    assert p.shape == (2, 3, 8, 8) and torch.equal(p[:, 0], x[:, 0, 3])
    coronal = torch.nn.functional.interpolate(x[:, :, :, 4].flip(2), size=(8, 8), mode="bilinear",
                                              align_corners=False)
    assert torch.allclose(p[:, 1:2], coronal)  # resized from 6 x 8 to 8 x 8, superior at the top
    mip = create_model("resnet9_25d", num_classes=2, input_size=8, planes="mip").to_planes(torch.randn(2, 1, 8, 8, 8))
    assert mip.shape == (2, 3, 8, 8)
    cube = torch.randn(2, 1, 8, 8, 8)
    m = create_model("resnet9_25d", num_classes=2, input_size=8, planes="mip").to_planes(cube)
    assert torch.equal(m[:, 0], cube[:, 0].amax(1)) and torch.equal(m[:, 2], cube[:, 0].amax(3).flip(1))
    slab = create_model("resnet9_25d", num_classes=2, in_chans=1, input_size=8, planes="slab", slab=5)
    assert slab.to_planes(cube).shape == (2, 5, 8, 8) and slab.backbone.stem[0][0].in_channels == 5

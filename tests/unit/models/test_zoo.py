"""The registry sweep: every registered model builds, runs forward and backward, and honours its card.

Real computation at 28 and 64 px with 1 and 3 channels (batch 2, 3 classes); the 224 px ImageNet path and
each card's ``min_input_size`` are checked on the meta device (shapes only, no memory, no arithmetic),
which catches what breaks at other sizes: collapsed maps and mismatched layers.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medclass.errors import ConfigError, DataError
from medclass.models import create_model, get_model_card, list_models

ALL = list_models(spatial_dims=2)  # volumes: test_zoo3d.py


def _out(model: nn.Module, path: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(output of module path, model output)`` for ``model(x)``."""
    got = []
    handle = dict(model.named_modules())[path].register_forward_hook(lambda m, a, o: got.append(o))
    try:
        out = model(x)
    finally:
        handle.remove()
    return got[0], out


@pytest.mark.parametrize("size,in_chans", [(28, 1), (28, 3), (64, 1), (64, 3)])
@pytest.mark.parametrize("name", ALL)
def test_forward_backward_and_card(name, size, in_chans):
    torch.manual_seed(0)
    card = get_model_card(name)
    model = create_model(name, num_classes=3, in_chans=in_chans, input_size=size)
    x = torch.randn(2, in_chans, size, size)

    model.train()  # the training path, batch norm on batch statistics
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
    if card.first_conv:
        assert isinstance(modules[card.first_conv], nn.Conv2d)
        assert modules[card.first_conv].in_channels == in_chans

    model.eval()
    with torch.no_grad():
        cam, logits = _out(model, card.cam_layer, x)
        feats = model.forward_features(x)
        assert cam.ndim == 4 and torch.equal(cam, feats), "cam_layer must output the last spatial feature map"
        assert torch.allclose(model.forward_head(feats), logits, atol=1e-5)
        assert model.forward_head(feats, pre_logits=True).shape == (2, fc.in_features)
        if card.supports_cam:  # CAM's premise: logits = classifier(global average of the cam_layer map)
            assert fc.in_features == cam.shape[1]
            assert torch.allclose(fc(cam.mean((2, 3))), logits, atol=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_large_and_smallest_inputs_on_meta_device(name):
    card = get_model_card(name)
    for size, in_chans in [(224, 3), (card.min_input_size, 1)]:
        with torch.device("meta"):
            model = create_model(name, num_classes=5, in_chans=in_chans, input_size=size).eval()
            feats = model.forward_features(torch.empty(2, in_chans, size, size))
            assert feats.ndim == 4 and min(feats.shape[2:]) >= 1, (size, in_chans)
            assert model.forward_head(feats).shape == (2, 5), (size, in_chans)
    with pytest.raises(ConfigError, match=f"at least {card.min_input_size} px"):
        create_model(name, num_classes=2, input_size=card.min_input_size - 1)


@pytest.mark.parametrize("name", [n for n in ALL if get_model_card(n).imagenet_weights])
def test_imagenet_cards_use_the_weights_statistics(name):
    card = get_model_card(name)
    assert card.in_chans == 3 and len(card.mean) == len(card.std) == 3
    assert card.mean in ((0.485, 0.456, 0.406), (0.5, 0.5, 0.5))


def test_small_image_adaptations():
    assert create_model("resnet18", num_classes=2, input_size=28).small_input
    assert not create_model("resnet18", num_classes=2, input_size=224).small_input
    with torch.device("meta"):
        vgg = create_model("vgg16", num_classes=2, input_size=28)
        assert sum(isinstance(m, nn.MaxPool2d) for m in vgg.features) == 3 and vgg.pool_side == 3
        vgg = create_model("vgg16", num_classes=2, input_size=224)
        assert sum(isinstance(m, nn.MaxPool2d) for m in vgg.features) == 5 and vgg.pool_side == 7
        assert vgg.classifier[0].in_features == 512 * 7 * 7  # torchvision's fc6: ImageNet weights fit as they are
        assert create_model("alexnet", num_classes=2, input_size=28).features[0].kernel_size == (3, 3)
        assert create_model("alexnet", num_classes=2, input_size=224).features[0].kernel_size == (11, 11)
        assert create_model("vit_tiny", num_classes=2, input_size=28).patch_embed.patch_size == (4, 4)
        assert create_model("vit_tiny", num_classes=2, input_size=224).patch_embed.patch_size == (16, 16)
        assert create_model("convnext_atto", num_classes=2, input_size=28).stem[0].kernel_size == (1, 1)
        assert create_model("convnext_atto", num_classes=2, input_size=64).stem[0].kernel_size == (4, 4)


def test_vit_runs_at_sizes_it_was_not_built_for():
    model = create_model("vit_tiny", num_classes=2, input_size=28).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 30, 30)).shape == (1, 2)  # padded to 32, 8x8 patches
        assert model.forward_features(torch.randn(1, 1, 30, 30)).shape == (1, 192, 8, 8)


def test_pixel_models_check_the_image_shape():
    model = create_model("logreg", num_classes=2, in_chans=1, input_size=28)
    assert sum(p.numel() for p in model.parameters()) == 28 * 28 * 2 + 2
    with pytest.raises(DataError, match="built for 1x28x28 images.*got 3x64x64"):
        model(torch.zeros(1, 3, 64, 64))


def test_options_a_family_does_not_have_are_config_errors():
    with pytest.raises(ConfigError, match=r"vgg16 has no option 'width' \(model.width\); its options are: "
                                          r"drop_rate, small_input"):
        create_model("vgg16", num_classes=2, width=8)
    vgg = create_model("vgg16", num_classes=2, width=None, input_size=28)  # unset options are ignored ...
    assert vgg.features[0].out_channels == 64  # ... so VGG-16 keeps its own widths (64 ... 512 channels)
    assert vgg(torch.zeros(1, 1, 28, 28)).shape == (1, 2)
    assert create_model("mlp", num_classes=2, width=32).hidden[0][0].out_features == 32

import pytest
import torch

from medclass.errors import ConfigError
from medclass.models import create_model, get_model_card, list_models, register_model

SMALL_WIDTH = {"resnet9": 8}  # keep the sweep fast; structure is what is tested


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("size,in_chans,num_classes", [(28, 1, 2), (64, 3, 5)])
def test_every_model_forward_backward_and_card(name, size, in_chans, num_classes):
    kwargs = {"width": SMALL_WIDTH[name]} if name in SMALL_WIDTH else {}
    m = create_model(name, num_classes=num_classes, in_chans=in_chans, input_size=size, **kwargs)
    x = torch.randn(2, in_chans, size, size)
    out = m(x)
    assert out.shape == (2, num_classes)
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    card = get_model_card(name)
    modules = dict(m.named_modules())
    assert card.cam_layer in modules and card.classifier in modules
    assert isinstance(modules[card.classifier], torch.nn.Linear)
    m.eval()
    with torch.no_grad():
        feats = m.forward_features(x)
        assert feats.ndim == 4 and feats.shape[-1] >= 1  # a spatial map for CAM
        assert torch.allclose(m.forward_head(feats), m(x), atol=1e-5)
        assert m.forward_head(feats, pre_logits=True).shape == (2, modules[card.classifier].in_features)


def test_small_input_stem():
    assert create_model("resnet18", num_classes=2, input_size=28).small_input
    assert not create_model("resnet18", num_classes=2, input_size=224).small_input


def test_unknown_and_invalid():
    with pytest.raises(ConfigError, match=r"Unknown model 'resnet81'\. Did you mean 'resnet18'\?.*medclass models list"):
        create_model("resnet81", num_classes=2)
    with pytest.raises(ConfigError, match="num_classes must be >= 1"):
        create_model("resnet9", num_classes=0)
    with pytest.raises(ConfigError, match="at least 8 px"):
        create_model("resnet9", num_classes=2, input_size=4)


def test_registering_twice_is_an_error():
    with pytest.raises(RuntimeError, match="registered twice"):
        @register_model(family="x", description="x", classifier="fc", cam_layer="fc")
        def resnet9(**kwargs):  # noqa: F811  same name as the real one, on purpose
            return None


def test_list_models_pattern():
    assert list_models("resnet*") == ["resnet18", "resnet34", "resnet50", "resnet9"]
    assert list_models("nothing*") == []

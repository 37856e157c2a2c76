import numpy as np
import pytest
import torch

from medclass.errors import ConfigError
from medclass.models import create_model, extract_features


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("resnet9", num_classes=2, in_chans=1, width=8).train()


def test_pre_logits_features_in_any_batching(model):
    x = torch.randn(10, 1, 28, 28)
    feats = extract_features(model, x)
    assert feats.shape == (10, 64) and feats.dtype == np.float32
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)
    pairs = [(x[:3], torch.zeros(3)), (x[3:], torch.zeros(7))]  # what a loader yields
    np.testing.assert_allclose(extract_features(model, pairs), feats, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(extract_features(model, x, batch_size=4), feats, rtol=1e-5, atol=1e-6)


def test_named_layer_is_average_pooled(model):
    x = torch.randn(5, 1, 28, 28)
    feats = extract_features(model, x, layer="layer2")
    model.eval()
    with torch.no_grad():
        expected = model.layer2(model.layer1(model.stem(x))).mean((2, 3)).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="no layer named 'layer7'. Did you mean 'layer3'.*modules are: stem, layer1"):
        extract_features(model, x, layer="layer7")


def test_transformer_tokens_are_averaged():
    vit = create_model("vit_tiny", num_classes=2, input_size=28)
    assert extract_features(vit, torch.randn(3, 1, 28, 28), layer="blocks.5").shape == (3, 192)

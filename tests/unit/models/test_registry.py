import pytest

from medclass.cli.main import main
from medclass.errors import ConfigError
from medclass.models import count_parameters, create_model, get_model_card, list_models, register_model

# The forward/backward sweep over every registered model is in test_zoo.py.


def test_unknown_and_invalid():
    with pytest.raises(ConfigError, match=r"Unknown model 'resnet81'\. Did you mean 'resnet18'\?.*models list"):
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
    assert list_models("resnet*", spatial_dims=2) == ["resnet101", "resnet152", "resnet18", "resnet34", "resnet50", "resnet9"]
    assert list_models("vgg1?") == ["vgg11", "vgg16", "vgg19"]
    assert list_models("nothing*") == []
    assert {"logreg", "mlp", "lenet5", "alexnet", "vgg16_bn", "googlenet", "inception_v3", "densenet121",
            "efficientnet_b0", "convnext_atto", "vit_tiny"} <= set(list_models())


def test_count_parameters_matches_a_real_model():
    real = create_model("resnet18", num_classes=2, in_chans=1, input_size=28)
    assert count_parameters("resnet18") == sum(p.numel() for p in real.parameters())
    assert count_parameters("logreg", num_classes=3, input_size=10) == 10 * 10 * 3 + 3
    assert not any(p.is_meta for p in create_model("lenet5", num_classes=2).parameters())  # no meta leak


def test_cli_lists_the_zoo(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:4] == ["name", "family", "params", "min"]
    vgg = next(line for line in out.splitlines() if line.startswith("vgg16_bn "))
    assert "50.39M" in vgg and "torchvision" in vgg and "gradcam" in vgg
    assert "cam, gradcam" in next(line for line in out.splitlines() if line.startswith("resnet18 "))
    assert main(["models", "list", "vit*"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4  # header, rule, one model, footnote
    assert main(["models", "info", "densenet121"]) == 0
    out = capsys.readouterr().out
    assert "features.denseblock4" in out and "torchvision:DenseNet121_Weights" in out and "(0.485, 0.456" in out


def test_cards_are_consistent():
    for name in list_models():
        card = get_model_card(name)
        assert len(card.blocks) == len(set(card.blocks)), name
        assert card.classifier not in card.blocks, name
        assert bool(card.imagenet_weights) == (card.mean != (0.5,)), name  # ImageNet statistics where weights exist

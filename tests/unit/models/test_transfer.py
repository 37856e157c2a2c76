import pytest
import torch

from medclass.errors import ConfigError
from medclass.models import apply_transfer, create_model, freeze_bn_stats, get_model_card
from medclass.models.transfer import parameter_blocks


def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _resnet18():
    torch.manual_seed(0)
    return create_model("resnet18", num_classes=3, in_chans=1, input_size=28), get_model_card("resnet18")


def test_linear_trains_only_the_classifier_and_keeps_frozen_bn_statistics():
    model, card = _resnet18()
    groups = apply_transfer(model, card, "linear")
    assert _trainable(model) == {"fc.weight", "fc.bias"}
    assert groups["head"] == [model.fc.weight, model.fc.bias] and groups["backbone"] == []
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(groups["head"], lr=0.1)
    model.train()
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"fc.weight", "fc.bias"}  # running means/vars of the frozen backbone did not move
    assert model.training and not model.bn1.training  # the hook keeps frozen batch norm in eval mode


def test_last_k_counts_blocks_from_the_output():
    model, card = _resnet18()
    apply_transfer(model, card, "last-k", trainable_blocks=1)
    assert {n.split(".")[0] for n in _trainable(model)} == {"layer4", "fc"}
    apply_transfer(model, card, "last-k", trainable_blocks=2)
    assert {n.split(".")[0] for n in _trainable(model)} == {"layer3", "layer4", "fc"}
    apply_transfer(model, card, "last-k", trainable_blocks=5)  # every block: the stem's bn1 goes with conv1
    assert _trainable(model) == {n for n, _ in model.named_parameters()}
    apply_transfer(model, card, "last-k", trainable_blocks=0)
    assert _trainable(model) == {"fc.weight", "fc.bias"}
    with pytest.raises(ConfigError, match=r"model.trainable_blocks=6 but resnet18 has 5 blocks \(conv1, layer1"):
        apply_transfer(model, card, "last-k", trainable_blocks=6)


def test_unlisted_parameters_join_the_nearest_block_before_them():
    with torch.device("meta"):
        model = create_model("vit_tiny", num_classes=2, input_size=28)
    card = get_model_card("vit_tiny")
    apply_transfer(model, card, "last-k", trainable_blocks=1)
    names = _trainable(model)
    assert "norm.weight" in names and "blocks.11.attn.qkv.weight" in names  # final norm belongs to the last block
    assert "pos_embed" not in names and "blocks.10.mlp.fc1.weight" not in names
    apply_transfer(model, card, "last-k", trainable_blocks=len(card.blocks))
    assert {"pos_embed", "cls_token"} <= _trainable(model)  # before the first block: they belong to it


@pytest.mark.parametrize("strategy", ["full", "discriminative"])
def test_full_and_discriminative_train_everything_split_in_two(strategy):
    model, card = _resnet18()
    apply_transfer(model, card, "linear")
    groups = apply_transfer(model, card, strategy)
    assert all(p.requires_grad for p in model.parameters())
    ids = [id(p) for p in groups["head"] + groups["backbone"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {id(p) for p in groups["head"]} == {id(model.fc.weight), id(model.fc.bias)}
    model.train()
    model(torch.randn(2, 1, 28, 28))
    assert model.bn1.training  # no frozen layer left, so no batch norm is held in eval mode


@pytest.mark.parametrize("name", ["resnet9", "vgg11_bn", "densenet121", "efficientnet_b0", "convnext_atto", "mlp",
                                  "lenet5", "inception_v3", "googlenet", "alexnet"])
def test_every_parameter_is_in_exactly_one_group(name):
    with torch.device("meta"):
        model = create_model(name, num_classes=2, input_size=28)
    card = get_model_card(name)
    head, blocks = parameter_blocks(model, card)
    assert len(blocks) == max(len(card.blocks), 1) and all(blocks)
    assert sum(len(b) for b in blocks) + len(head) == len(list(model.parameters()))
    groups = apply_transfer(model, card, "last-k", trainable_blocks=1)
    assert len(groups["backbone"]) == len(blocks[-1])


def test_freeze_bn_stats_and_bad_strategy():
    model, card = _resnet18()
    for p in model.layer1.parameters():
        p.requires_grad_(False)
    model.train()
    assert freeze_bn_stats(model) == 4  # layer1: two BasicBlocks with two batch norms each
    assert not model.layer1[0].bn1.training and model.layer2[0].bn1.training
    with pytest.raises(ConfigError, match="transfer must be one of .*Got 'lineer' instead. Did you mean 'linear'"):
        apply_transfer(model, card, "lineer")

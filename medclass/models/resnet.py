"""ResNet-18/34/50/101/152 (He et al., CVPR 2016) from torchvision, adapted to small medical images.

At ImageNet sizes the network is torchvision's, with ``conv1`` rebuilt for ``in_chans`` channels. For
images smaller than 64 px the 7x7 stride-2 stem and the max-pool would shrink a 28 px image to 7 px
before the first block, so they are replaced by a 3x3 stride-1 convolution and no pooling: the
"small-image" ResNet of the MedMNIST v2 benchmark (Yang et al., Sci. Data 2023) and of CIFAR work.
Module names (``conv1``, ``layer4``, ``fc``) are torchvision's, so its pretrained weights load as is
(except the 7x7 ``conv1`` into a small-image model, which keeps its random 3x3 initialisation).
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from ._registry import IMAGENET_MEAN, IMAGENET_STD, register_model

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]

SMALL_INPUT_BELOW = 64  # px; below this the small-image stem is used


class ResNet(torchvision.models.ResNet):
    """torchvision's ResNet plus the ``forward_features`` / ``forward_head`` split."""

    def __init__(self, block, layers, *, num_classes: int, in_chans: int = 3, small_input: bool = False,
                 drop_rate: float = 0.0):
        super().__init__(block, layers, num_classes=num_classes)
        if small_input:
            self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        elif in_chans != 3:
            self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.drop = nn.Dropout(drop_rate)
        self.small_input = small_input
        self.num_features = self.fc.in_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create(block, layers, *, num_classes: int, in_chans: int, input_size: int, drop_rate: float = 0.0,
            small_input: bool | None = None) -> ResNet:
    if small_input is None:
        small_input = input_size < SMALL_INPUT_BELOW
    return ResNet(block, layers, num_classes=num_classes, in_chans=in_chans, small_input=small_input,
                  drop_rate=drop_rate)


def _card(weights: str, description: str) -> dict:
    return dict(family="resnet", classifier="fc", cam_layer="layer4", input_size=28, min_input_size=8, in_chans=3,
                mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="conv1",
                blocks=("conv1", "layer1", "layer2", "layer3", "layer4"),
                imagenet_weights=f"torchvision:{weights}", description=description,
                reference="K. He et al., Deep Residual Learning for Image Recognition. CVPR 2016.")


@register_model(**_card("ResNet18_Weights", "ResNet-18 (11M parameters); 3x3 stem below 64 px, as in MedMNIST v2"))
def resnet18(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0,
             small_input: bool | None = None) -> ResNet:
    return _create(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)


@register_model(**_card("ResNet34_Weights", "ResNet-34 (21M parameters); 3x3 stem below 64 px"))
def resnet34(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0,
             small_input: bool | None = None) -> ResNet:
    return _create(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)


@register_model(**_card("ResNet50_Weights", "ResNet-50 (24M parameters, bottleneck blocks); 3x3 stem below 64 px"))
def resnet50(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0,
             small_input: bool | None = None) -> ResNet:
    return _create(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)


@register_model(**_card("ResNet101_Weights", "ResNet-101 (43M parameters, bottleneck blocks); 3x3 stem below 64 px"))
def resnet101(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0,
              small_input: bool | None = None) -> ResNet:
    return _create(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)


@register_model(**_card("ResNet152_Weights", "ResNet-152 (58M parameters, bottleneck blocks); 3x3 stem below 64 px"))
def resnet152(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0,
              small_input: bool | None = None) -> ResNet:
    return _create(Bottleneck, [3, 8, 36, 3], num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)

"""ResNet-18/34/50 (He et al., CVPR 2016) from torchvision, adapted to small medical images.

At ImageNet sizes the network is torchvision's, with ``conv1`` rebuilt for ``in_chans`` channels. For
images smaller than 64 px the 7x7 stride-2 stem and the max-pool would shrink a 28 px image to 7 px
before the first block, so they are replaced by a 3x3 stride-1 convolution and no pooling: the
"small-image" ResNet of the MedMNIST v2 benchmark (Yang et al., Sci. Data 2023) and of CIFAR work.
Module names (``conv1``, ``layer4``, ``fc``) are torchvision's, so its pretrained weights load as is.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from ._registry import register_model

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50"]

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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create(block, layers, *, num_classes, in_chans, input_size, drop_rate=0.0, small_input=None):
    if small_input is None:
        small_input = input_size < SMALL_INPUT_BELOW
    return ResNet(block, layers, num_classes=num_classes, in_chans=in_chans, small_input=small_input,
                  drop_rate=drop_rate)


_CARD = dict(family="resnet", classifier="fc", cam_layer="layer4", input_size=28, min_input_size=8,
             reference="K. He et al., Deep Residual Learning for Image Recognition. CVPR 2016.")


@register_model(description="ResNet-18 (11M parameters); 3x3 stem below 64 px, as in MedMNIST v2", **_CARD)
def resnet18(*, num_classes: int, in_chans: int = 1, input_size: int = 28, **kwargs) -> ResNet:
    return _create(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   **kwargs)


@register_model(description="ResNet-34 (21M parameters); 3x3 stem below 64 px", **_CARD)
def resnet34(*, num_classes: int, in_chans: int = 1, input_size: int = 28, **kwargs) -> ResNet:
    return _create(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   **kwargs)


@register_model(description="ResNet-50 (24M parameters, bottleneck blocks); 3x3 stem below 64 px", **_CARD)
def resnet50(*, num_classes: int, in_chans: int = 1, input_size: int = 28, **kwargs) -> ResNet:
    return _create(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   **kwargs)

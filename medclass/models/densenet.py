"""DenseNet-121 (Huang et al., CVPR 2017) from torchvision, adapted to small images; CheXNet's backbone.

Four dense blocks (6, 12, 24, 16 layers, growth rate 32) joined by transitions that halve the side,
then batch norm, ReLU, global average pooling and one linear layer: the network CheXNet (Rajpurkar et al.,
2017) fine-tuned on ChestX-ray14. The final ReLU is a module here (``features.relu5``, no parameters), so
the output of ``features`` is exactly the map the classifier pools: CAM and Grad-CAM hook ``features``.

Small-image adaptation: below 64 px the 7x7 stride-2 stem and its max-pool would leave nothing after the
third transition (28 px -> 0), so ``features.conv0`` becomes a 3x3 stride-1 convolution and
``features.pool0`` is dropped: the network downsamples by 8 (28 px -> 3x3 map).

``model.dropout`` is applied once, before the classifier (torchvision's ``drop_rate``, dropout after each
dense layer, is left at 0). Old-style ImageNet keys (``norm.1``) are renamed as torchvision does.
"""

from __future__ import annotations

import re

import torch
import torchvision
from torch import nn

from ._builder import new_conv
from ._registry import IMAGENET_MEAN, IMAGENET_STD, register_model

__all__ = ["DenseNet", "densenet121"]

SMALL_INPUT_BELOW = 64  # px

# torchvision.models.densenet._load_state_dict: '.'s are no longer allowed in module names, but the
# published checkpoints still have keys such as 'denselayer1.norm.1.weight'.
_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


class DenseNet(torchvision.models.DenseNet):
    """torchvision's DenseNet with the features/head split, a ReLU module at the end and a small-image stem."""

    def __init__(self, *, num_classes: int, in_chans: int = 3, small_input: bool = False, drop_rate: float = 0.0,
                 growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16), num_init_features: int = 64):
        super().__init__(growth_rate=growth_rate, block_config=block_config, num_init_features=num_init_features,
                         num_classes=num_classes)
        if small_input:
            self.features.conv0 = new_conv(self.features.conv0, in_chans, kernel_size=3, stride=1, padding=1)
            self.features.pool0 = nn.Identity()
        elif in_chans != 3:
            self.features.conv0 = new_conv(self.features.conv0, in_chans)
        self.features.add_module("relu5", nn.ReLU())
        self.drop = nn.Dropout(drop_rate)
        self.small_input = small_input
        self.num_features = self.classifier.in_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return x if pre_logits else self.classifier(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def pretrained_filter(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in state_dict.items():
            m = _OLD_KEY.match(k)
            out[m.group(1) + m.group(2) if m else k] = v
        return out


@register_model(family="densenet", classifier="classifier", cam_layer="features", min_input_size=8, in_chans=3,
                mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="features.conv0",
                blocks=("features.conv0", "features.denseblock1", "features.transition1", "features.denseblock2",
                        "features.transition2", "features.denseblock3", "features.transition3",
                        "features.denseblock4"),
                imagenet_weights="torchvision:DenseNet121_Weights",
                description="DenseNet-121 (torchvision; CheXNet's backbone, 7M parameters); 3x3 stem below 64 px",
                reference="G. Huang et al., Densely connected convolutional networks. CVPR 2017.")
def densenet121(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0,
                small_input: bool | None = None) -> DenseNet:
    if small_input is None:
        small_input = input_size < SMALL_INPUT_BELOW
    return DenseNet(num_classes=num_classes, in_chans=in_chans, small_input=small_input, drop_rate=drop_rate)

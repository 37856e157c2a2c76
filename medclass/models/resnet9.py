"""ResNet-9: a small, fast residual network for low-resolution images, medclass's CPU default.

After D. Page, "How to train your ResNet" (Myrtle.ai, 2018), the DAWNBench CIFAR-10 network: a
conv-BN-ReLU stem, three stages that each double the width and halve the side (max-pool), residual
blocks after the first and last stage, then global average pooling (so CAM applies) and one linear
layer. At 28 px and width 24 it costs about 0.08 GFLOP per image forward, 1/12 of the small-image
ResNet-18, which is what makes a 28 px benchmark trainable in minutes on two CPU cores.

For inputs larger than 32 px the stem strides, so the first stage always works on a map of 16-32 px.
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import register_model

__all__ = ["ResNet9", "resnet9"]


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, c), conv_bn(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    def __init__(self, *, num_classes: int, in_chans: int = 1, width: int = 24, input_size: int = 28,
                 drop_rate: float = 0.0):
        super().__init__()
        w = width
        stem_stride = 1
        while input_size // stem_stride > 32 and stem_stride < 8:
            stem_stride *= 2
        stem = [conv_bn(in_chans, w, stride=min(stem_stride, 2))]
        if stem_stride > 2:
            stem.append(nn.MaxPool2d(stem_stride // 2))
        self.stem = nn.Sequential(*stem)
        self.layer1 = nn.Sequential(conv_bn(w, 2 * w), nn.MaxPool2d(2), Residual(2 * w))
        self.layer2 = nn.Sequential(conv_bn(2 * w, 4 * w), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(conv_bn(4 * w, 8 * w), nn.MaxPool2d(2), Residual(8 * w))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(8 * w, num_classes)
        self.num_features = 8 * w
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.layer2(self.layer1(self.stem(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.pool(x), 1)
        return x if pre_logits else self.fc(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(family="resnet9", classifier="fc", cam_layer="layer3", input_size=28, min_input_size=8,
                first_conv="stem.0.0", blocks=("stem", "layer1", "layer2", "layer3"),
                description="ResNet-9 (Myrtle.ai DAWNBench), width 24 by default: about 1M parameters",
                reference="D. Page, How to train your ResNet. Myrtle.ai, 2018.")
def resnet9(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 24,
            drop_rate: float = 0.0) -> ResNet9:
    return ResNet9(num_classes=num_classes, in_chans=in_chans, width=width, input_size=input_size,
                   drop_rate=drop_rate)

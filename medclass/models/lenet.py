"""LeNet-5 (LeCun et al., Proc. IEEE 1998), in its common modern form.

Two 5x5 convolutions (6 and 16 channels) each followed by ReLU and 2x2 max-pooling, then fully connected
layers of 120 and 84 units and the classifier. The original used scaled-tanh units and trainable
sub-sampling; ReLU and max-pooling are the usual modern substitutes. As for MNIST in the paper, the first
convolution pads by 2, so a 28 px image gives the 16x5x5 map the 120-unit layer was designed for. Larger
images are average-pooled to 5x5 before that layer (``pool``), so the same network runs at any size
from 12 px. There are no pretrained weights.
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import register_model

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    def __init__(self, *, num_classes: int, in_chans: int = 1, drop_rate: float = 0.0):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_chans, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.pool = nn.AdaptiveAvgPool2d(5)
        self.fc1 = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True))
        self.fc2 = nn.Sequential(nn.Linear(120, 84), nn.ReLU(inplace=True))
        self.num_features = 84
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(84, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.fc2(self.fc1(torch.flatten(self.pool(x), 1)))
        return x if pre_logits else self.fc(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(family="lenet", classifier="fc", cam_layer="conv2", min_input_size=12, first_conv="conv1.0",
                blocks=("conv1", "conv2", "fc1", "fc2"), supports_cam=False,
                description="LeNet-5 (62k parameters): two 5x5 conv layers, three fully connected layers",
                reference="Y. LeCun et al., Gradient-based learning applied to document recognition. "
                          "Proc. IEEE, 1998.")
def lenet5(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0) -> LeNet5:
    return LeNet5(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)

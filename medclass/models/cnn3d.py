"""3D convolutional networks for volumes ``(N, C, D, H, W)``: MONAI's 3D ResNets and a CPU-sized 3D ResNet-9.

``resnet10_3d`` and ``resnet18_3d`` are MONAI's ``monai.networks.nets.ResNet`` (after Hara et al., "Can
Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?", CVPR 2018; the network of MedicalNet,
Chen et al. 2019) with ``spatial_dims=3``, basic blocks and projection shortcuts, plus the
``forward_features``/``forward_head`` split. As in :mod:`medclass.models.resnet`, volumes smaller than 64
voxels a side get a 3x3x3 stride-1 stem and no max-pool (MONAI's ``conv1_t_size=3, conv1_t_stride=1,
no_max_pool=True``), the small-image ResNet of the "ResNet-18 + 3D" rows of MedMNIST v2. ``width`` is the
first stage's channel count (64 in the paper networks; the stages double it): a 3D convolution costs 3 times
its 2D counterpart per voxel and there are 28 times more voxels at 28³ than pixels at 28², so on a CPU
``width=16`` (1/16 of the cost) is the practical choice.

``cnn3d_small`` is medclass's ResNet-9 (:mod:`medclass.models.resnet9`) with its kernels inflated to cubes
(:func:`~medclass.models._convert3d.convert_to_3d`, ``mode="3d"``) and re-initialised: about 0.2 GFLOP per
28³ volume at width 8.
"""

from __future__ import annotations

import torch
from monai.networks.nets.resnet import ResNet as MonaiResNet
from torch import nn

from ._convert3d import convert_to_3d
from ._registry import register_model
from .resnet9 import ResNet9

__all__ = ["ResNet3D", "resnet10_3d", "resnet18_3d", "cnn3d_small"]

SMALL_INPUT_BELOW = 64  # voxels a side; below this the small stem is used (as in 2D)


class ResNet3D(MonaiResNet):
    """MONAI's 3D ResNet (basic blocks) with the ``forward_features`` / ``forward_head`` split."""

    def __init__(self, layers: list[int], *, num_classes: int, in_chans: int = 1, width: int = 64,
                 small_input: bool = True, drop_rate: float = 0.0):
        super().__init__(block="basic", layers=layers, block_inplanes=[width, 2 * width, 4 * width, 8 * width],
                         spatial_dims=3, n_input_channels=in_chans, conv1_t_size=3 if small_input else 7,
                         conv1_t_stride=1 if small_input else 2, no_max_pool=small_input, shortcut_type="B",
                         num_classes=num_classes, bias_downsample=False)
        self.drop = nn.Dropout(drop_rate)
        self.small_input = small_input
        self.num_features = 8 * width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_CARD = dict(family="resnet3d", classifier="fc", cam_layer="layer4", input_size=28, min_input_size=8,
             first_conv="conv1", blocks=("conv1", "layer1", "layer2", "layer3", "layer4"), spatial_dims=3,
             reference="K. Hara, H. Kataoka, Y. Satoh, Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs "
                       "and ImageNet? CVPR 2018 (MONAI's monai.networks.nets.ResNet).")


def _small(input_size: int, small_input: bool | None) -> bool:
    return input_size < SMALL_INPUT_BELOW if small_input is None else small_input


@register_model(**_CARD, description="3D ResNet-10 (MONAI), width 64 by default; 3x3x3 stem below 64 voxels")
def resnet10_3d(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 64,
                drop_rate: float = 0.0, small_input: bool | None = None) -> ResNet3D:
    return ResNet3D([1, 1, 1, 1], num_classes=num_classes, in_chans=in_chans, width=width,
                    small_input=_small(input_size, small_input), drop_rate=drop_rate)


@register_model(**_CARD, description="3D ResNet-18 (MONAI), width 64 by default; 3x3x3 stem below 64 voxels")
def resnet18_3d(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 64,
                drop_rate: float = 0.0, small_input: bool | None = None) -> ResNet3D:
    return ResNet3D([2, 2, 2, 2], num_classes=num_classes, in_chans=in_chans, width=width,
                    small_input=_small(input_size, small_input), drop_rate=drop_rate)


@register_model(family="resnet3d", classifier="fc", cam_layer="layer3", input_size=28, min_input_size=8,
                first_conv="stem.0.0", blocks=("stem", "layer1", "layer2", "layer3"), spatial_dims=3,
                reference="D. Page, How to train your ResNet. Myrtle.ai, 2018 (kernels inflated to 3D).",
                description="ResNet-9 in 3D (3x3x3 kernels), width 8 by default: about 0.2 GFLOP per 28³ volume")
def cnn3d_small(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 8,
                drop_rate: float = 0.0) -> ResNet9:
    model = convert_to_3d(ResNet9(num_classes=num_classes, in_chans=in_chans, width=width, input_size=input_size,
                                  drop_rate=drop_rate), "3d")
    for m in model.modules():  # inflated random weights are constant along depth: draw them afresh
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model

"""ACS networks: 2D classifiers whose convolutions run on volumes along the axial, coronal and sagittal planes.

After J. Yang et al., "Reinventing 2D Convolutions for 3D Images", IEEE JBHI 25(8), 2021, the design behind
the "ResNet-18 + ACS" rows of MedMNIST v2 (Yang et al., Sci. Data 2023): the small-image 2D ResNet-18 of
:mod:`medclass.models.resnet` (3x3 stride-1 stem below 64 px) with every layer converted by
:func:`~medclass.models._convert3d.convert_to_3d`. Each convolution keeps its 2D weights and splits its output
channels into three groups, one per plane, so ImageNet weights (or a medclass 2D run's checkpoint file) load
unchanged: ``create_model("resnet18_acs", ..., pretrained="imagenet")``. ``resnet9_acs`` is the same
conversion of medclass's ResNet-9, with a width option, for CPU budgets.

Input ``(N, C, D, H, W)``; ``forward_features`` gives the last 3D feature map, ``forward_head`` pools it.
"""

from __future__ import annotations

from torchvision.models.resnet import BasicBlock

from ._convert3d import convert_to_3d
from ._registry import IMAGENET_MEAN, IMAGENET_STD, register_model
from .resnet import ResNet, _create
from .resnet9 import ResNet9

__all__ = ["resnet18_acs", "resnet9_acs"]

_REFERENCE = ("J. Yang et al., Reinventing 2D Convolutions for 3D Images. IEEE JBHI 25(8), 2021; MedMNIST v2, "
              "Sci. Data 10, 41 (2023).")


@register_model(family="acs", classifier="fc", cam_layer="layer4", input_size=28, min_input_size=8, in_chans=3,
                mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="conv1",
                blocks=("conv1", "layer1", "layer2", "layer3", "layer4"),
                imagenet_weights="torchvision:ResNet18_Weights", spatial_dims=3, reference=_REFERENCE,
                description="ResNet-18 with ACS convolutions (2D weights on three planes); 3x3 stem below 64 voxels")
def resnet18_acs(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0,
                 small_input: bool | None = None) -> ResNet:
    model = _create(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                    drop_rate=drop_rate, small_input=small_input)
    return convert_to_3d(model, "acs")


@register_model(family="acs", classifier="fc", cam_layer="layer3", input_size=28, min_input_size=8,
                first_conv="stem.0.0", blocks=("stem", "layer1", "layer2", "layer3"), spatial_dims=3,
                reference=_REFERENCE,
                description="ResNet-9 with ACS convolutions, width 16 by default: a CPU-sized ACS network")
def resnet9_acs(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 16,
                drop_rate: float = 0.0) -> ResNet9:
    model = ResNet9(num_classes=num_classes, in_chans=in_chans, width=width, input_size=input_size,
                    drop_rate=drop_rate)
    return convert_to_3d(model, "acs")

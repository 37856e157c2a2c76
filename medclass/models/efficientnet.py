"""EfficientNet-B0 (Tan & Le, ICML 2019) from timm, adapted to small images.

timm's ``efficientnet_b0`` as it is: mobile inverted bottlenecks with squeeze-and-excitation, 1280
features, dropout (``model.dropout``, 0.2 in the paper) and one linear layer; timm builds it for any
``in_chans`` and ``num_classes``, and its ``forward_features`` / ``forward_head`` already follow the
medclass contract. ``bn2`` (batch norm and SiLU after ``conv_head``) gives the last feature map.

Small-image adaptation: below 64 px the stride-2 stem would leave a 1x1 map after the four later
stride-2 stages, so ``conv_stem`` gets stride 1 (28 px -> 2x2 map). Its weights keep their shape, so the
ImageNet weights load unchanged.
"""

from __future__ import annotations

import timm
from torch import nn

from ._registry import IMAGENET_MEAN, IMAGENET_STD, register_model

__all__ = ["efficientnet_b0"]

SMALL_INPUT_BELOW = 64  # px


@register_model(family="efficientnet", classifier="classifier", cam_layer="bn2", min_input_size=8, in_chans=3,
                mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="conv_stem",
                blocks=("conv_stem", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "blocks.4", "blocks.5",
                        "blocks.6", "conv_head"),
                imagenet_weights="timm:efficientnet_b0.ra_in1k",
                description="EfficientNet-B0 (timm, 4M parameters); stride-1 stem below 64 px",
                reference="M. Tan, Q. V. Le, EfficientNet: Rethinking model scaling for convolutional neural "
                          "networks. ICML 2019.")
def efficientnet_b0(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.2,
                    small_input: bool | None = None) -> nn.Module:
    model = timm.create_model("efficientnet_b0", pretrained=False, num_classes=num_classes, in_chans=in_chans,
                              drop_rate=drop_rate)
    if small_input is None:
        small_input = input_size < SMALL_INPUT_BELOW
    if small_input:
        model.conv_stem.stride = (1, 1)
    model.small_input = small_input
    return model

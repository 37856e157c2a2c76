"""ConvNeXt-Atto (Liu et al., CVPR 2022; the 3.7M-parameter variant from timm), adapted to small images.

timm's ``convnext_atto``: a patchify stem, four stages of depth-wise 7x7 blocks (2, 2, 6, 2 blocks; 40 to
320 channels) joined by 2x2 stride-2 downsampling, then a head that pools, layer-normalises and applies
one linear layer (``head.fc``). timm builds it for any ``in_chans`` and ``num_classes``; its
``forward_features`` / ``forward_head`` already follow the medclass contract.

Small-image adaptation: the 4x4 stem patch is replaced by the largest of 4, 2 and 1 that still leaves a
2x2 final map (28 px -> 1x1 patches, 3x3 map; 32-63 px -> 2x2 patches; 64 px and more -> 4x4 as
published). The ImageNet stem then no longer fits and keeps its random initialisation (logged).

The head normalises after pooling, so the original CAM is not exact here; Grad-CAM hooks ``stages.3``.
"""

from __future__ import annotations

import timm
from torch import nn

from ._registry import IMAGENET_MEAN, IMAGENET_STD, register_model

__all__ = ["convnext_atto", "stem_patch_size"]


def stem_patch_size(input_size: int) -> int:
    """The largest stem patch (4, 2 or 1) whose network still ends on a map of at least 2x2."""
    return next((p for p in (4, 2) if input_size // (p * 8) >= 2), 1)


@register_model(family="convnext", classifier="head.fc", cam_layer="stages.3", min_input_size=8, in_chans=3,
                mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="stem.0", supports_cam=False,
                blocks=("stem", "stages.0", "stages.1", "stages.2", "stages.3"),
                imagenet_weights="timm:convnext_atto.d2_in1k",
                description="ConvNeXt-Atto (timm, 3.4M parameters); smaller stem patches below 64 px",
                reference="Z. Liu et al., A ConvNet for the 2020s. CVPR 2022.")
def convnext_atto(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0,
                  patch_size: int | None = None) -> nn.Module:
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=num_classes, in_chans=in_chans,
                              drop_rate=drop_rate, patch_size=patch_size or stem_patch_size(input_size))
    return model

"""AlexNet (Krizhevsky, Sutskever & Hinton, NeurIPS 2012) from torchvision, adapted to small images.

torchvision's single-GPU variant ("One weird trick", Krizhevsky 2014): five convolutions, three
max-pools, a 6x6 average pool and a three-layer fully connected head (4096, 4096, classes) with dropout
before the first two. Module names are torchvision's, so its ImageNet weights load as they are.

Small-image adaptations, each applied only where the original would collapse the image:

- Below 96 px the 11x11 stride-4 stem would leave less than a 2x2 map after the third pooling (a 28 px
  image would vanish), so ``features.0`` becomes a 3x3 stride-1 convolution; the three max-pools stay
  (28 px -> 2x2 map, 64 px -> 7x7).
- The average pool produces ``min(6, final map side)`` cells per side instead of always 6x6, so a small
  map is not blown up by replication; ``fc6`` (``classifier.1``) is sized accordingly. ImageNet ``fc6``
  weights are folded onto the smaller grid (:func:`~medclass.models._builder.fold_linear_grid`).

``model.dropout`` sets both dropouts of the head (0.5 by default, as in the paper). The classifier is a
multi-layer head, so the original CAM does not apply; Grad-CAM uses ``features`` (the last pooled map).
"""

from __future__ import annotations

import logging

import torch
import torchvision
from torch import nn

from ._builder import conv_out, fold_linear_grid, new_conv
from ._registry import IMAGENET_MEAN, IMAGENET_STD, register_model

__all__ = ["AlexNet", "alexnet"]

log = logging.getLogger(__name__)

SMALL_INPUT_BELOW = 96  # px; below this the 3x3 stride-1 stem is used


class AlexNet(torchvision.models.AlexNet):
    """torchvision's AlexNet with the ``forward_features`` / ``forward_head`` split and small-image stem."""

    def __init__(self, *, num_classes: int, in_chans: int = 3, input_size: int = 224, small_input: bool = False,
                 drop_rate: float = 0.5):
        super().__init__(num_classes=num_classes, dropout=drop_rate)
        if small_input:
            self.features[0] = new_conv(self.features[0], in_chans, kernel_size=3, stride=1, padding=1)
            side = input_size
        else:
            if in_chans != 3:
                self.features[0] = new_conv(self.features[0], in_chans)
            side = conv_out(input_size, 11, 4, 2)
        for _ in range(3):
            side = conv_out(side, 3, 2)
        self.pool_side = max(1, min(6, side))
        if self.pool_side != 6:
            self.avgpool = nn.AdaptiveAvgPool2d(self.pool_side)
            self.classifier[1] = nn.Linear(256 * self.pool_side ** 2, 4096)
        self.small_input = small_input
        self.num_features = 4096

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.classifier[:-1](torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.classifier[-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def pretrained_filter(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Fold ImageNet ``fc6`` (256x6x6 inputs) onto this model's pooled grid."""
        w = state_dict.get("classifier.1.weight")
        if w is not None and w.shape[1] == 256 * 36 and self.pool_side != 6:
            state_dict = dict(state_dict)
            state_dict["classifier.1.weight"] = fold_linear_grid(w, 256, 6, self.pool_side)
            log.info("alexnet: fc6 weights folded from a 6x6 to a %dx%d pooled grid", self.pool_side, self.pool_side)
        return state_dict


@register_model(family="alexnet", classifier="classifier.6", cam_layer="features", min_input_size=15,
                in_chans=3, mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="features.0", supports_cam=False,
                blocks=("features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1",
                        "classifier.4"),
                imagenet_weights="torchvision:AlexNet_Weights",
                description="AlexNet (torchvision), 3x3 stride-1 stem below 96 px; ImageNet weights at 224 px",
                reference="A. Krizhevsky, I. Sutskever, G. E. Hinton, ImageNet classification with deep "
                          "convolutional neural networks. NeurIPS 2012.")
def alexnet(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.5,
            small_input: bool | None = None) -> AlexNet:
    if small_input is None:
        small_input = input_size < SMALL_INPUT_BELOW
    return AlexNet(num_classes=num_classes, in_chans=in_chans, input_size=input_size, small_input=small_input,
                   drop_rate=drop_rate)

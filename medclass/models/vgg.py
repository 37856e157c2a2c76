"""VGG-11/16/19, with and without batch normalisation (Simonyan & Zisserman, ICLR 2015), from torchvision.

Stacks of 3x3 convolutions in five stages separated by 2x2 max-pools, a 7x7 average pool and a
three-layer fully connected head (4096, 4096, classes). Module names are torchvision's, so its ImageNet
weights load as they are (``features.N`` indices are kept: dropped layers become ``nn.Identity``).

Small-image adaptations, each applied only where the original would collapse the image:

- Below 64 px five poolings would leave less than a 2x2 map (28 px -> 0), so the first and the last
  max-pool are dropped: the network downsamples by 8 instead of 32 (28 px -> 3x3 map, 32 px -> 4x4).
  Every convolution keeps its ImageNet shape.
- The average pool produces ``min(7, final map side)`` cells per side instead of always 7x7, so the head
  is not fed a small map blown up by replication; ``fc6`` (``classifier.0``) is sized accordingly and
  ImageNet ``fc6`` weights are folded onto the smaller grid.

``model.dropout`` sets both dropouts of the head (0.5 by default, as in the paper). The classifier is a
multi-layer head, so the original CAM does not apply; Grad-CAM uses ``features`` (the last map).
"""

from __future__ import annotations

import logging

import torch
import torchvision
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from ._builder import fold_linear_grid, pool_out
from ._registry import IMAGENET_MEAN, IMAGENET_STD, register_model

__all__ = ["VGG", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]

log = logging.getLogger(__name__)

SMALL_INPUT_BELOW = 64  # px; below this the first and last max-pools are dropped


class VGG(torchvision.models.VGG):
    """torchvision's VGG with the ``forward_features`` / ``forward_head`` split and small-image pooling."""

    def __init__(self, cfg: str, *, batch_norm: bool, num_classes: int, in_chans: int = 3, input_size: int = 224,
                 small_input: bool = False, drop_rate: float = 0.5):
        # torchvision's VGG.__init__ always allocates the 25088x4096 fc6 (0.5 s to initialise); the same modules
        # are built here with fc6 sized for this input, so the constructor is skipped (nn.Module's runs instead).
        nn.Module.__init__(self)
        self.features = make_layers(cfgs[cfg], batch_norm=batch_norm)
        if in_chans != 3:
            self.features[0] = nn.Conv2d(in_chans, 64, kernel_size=3, padding=1)
        pools = [i for i, m in enumerate(self.features) if isinstance(m, nn.MaxPool2d)]
        if small_input:
            for i in (pools[0], pools[-1]):
                self.features[i] = nn.Identity()
        self.pool_side = max(1, min(7, pool_out(input_size, 3 if small_input else 5)))
        self.avgpool = nn.AdaptiveAvgPool2d(self.pool_side)
        self.classifier = nn.Sequential(
            nn.Linear(512 * self.pool_side ** 2, 4096), nn.ReLU(True), nn.Dropout(p=drop_rate),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=drop_rate),
            nn.Linear(4096, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)
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
        """Fold ImageNet ``fc6`` (512x7x7 inputs) onto this model's pooled grid."""
        w = state_dict.get("classifier.0.weight")
        if w is not None and w.shape[1] == 512 * 49 and self.pool_side != 7:
            state_dict = dict(state_dict)
            state_dict["classifier.0.weight"] = fold_linear_grid(w, 512, 7, self.pool_side)
            log.info("vgg: fc6 weights folded from a 7x7 to a %dx%d pooled grid", self.pool_side, self.pool_side)
        return state_dict


def _conv_paths(cfg: str, batch_norm: bool) -> tuple[str, ...]:
    """``features.N`` of every convolution, in order (the blocks for last-k fine-tuning)."""
    paths, i = [], 0
    for v in cfgs[cfg]:
        if v == "M":
            i += 1
        else:
            paths.append(f"features.{i}")
            i += 3 if batch_norm else 2
    return tuple(paths)


def _card(cfg: str, batch_norm: bool, depth: int) -> dict:
    bn = "_BN" if batch_norm else ""
    return dict(family="vgg", classifier="classifier.6", cam_layer="features", min_input_size=8, in_chans=3,
                mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="features.0", supports_cam=False,
                blocks=_conv_paths(cfg, batch_norm) + ("classifier.0", "classifier.3"),
                imagenet_weights=f"torchvision:VGG{depth}{bn}_Weights",
                description=f"VGG-{depth}{' with batch norm' if batch_norm else ''} (torchvision); first and last "
                            f"max-pool dropped below 64 px",
                reference="K. Simonyan, A. Zisserman, Very deep convolutional networks for large-scale image "
                          "recognition. ICLR 2015.")


def _create(cfg: str, batch_norm: bool, *, num_classes: int, in_chans: int, input_size: int, drop_rate: float = 0.5,
            small_input: bool | None = None) -> VGG:
    if small_input is None:
        small_input = input_size < SMALL_INPUT_BELOW
    return VGG(cfg, batch_norm=batch_norm, num_classes=num_classes, in_chans=in_chans, input_size=input_size,
               small_input=small_input, drop_rate=drop_rate)


@register_model(**_card("A", False, 11))
def vgg11(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.5,
          small_input: bool | None = None) -> VGG:
    return _create("A", False, num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)


@register_model(**_card("A", True, 11))
def vgg11_bn(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.5,
             small_input: bool | None = None) -> VGG:
    return _create("A", True, num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)


@register_model(**_card("D", False, 16))
def vgg16(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.5,
          small_input: bool | None = None) -> VGG:
    return _create("D", False, num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)


@register_model(**_card("D", True, 16))
def vgg16_bn(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.5,
             small_input: bool | None = None) -> VGG:
    return _create("D", True, num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)


@register_model(**_card("E", False, 19))
def vgg19(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.5,
          small_input: bool | None = None) -> VGG:
    return _create("E", False, num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)


@register_model(**_card("E", True, 19))
def vgg19_bn(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.5,
             small_input: bool | None = None) -> VGG:
    return _create("E", True, num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                   drop_rate=drop_rate, small_input=small_input)

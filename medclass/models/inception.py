"""GoogLeNet (Inception-v1; Szegedy et al., CVPR 2015) and Inception-v3 (Szegedy et al., CVPR 2016), from
torchvision, adapted to small images.

Auxiliary classifiers are not built (``aux_logits=False``), so ``forward`` always returns one tensor;
their ImageNet weights are dropped when pretrained weights are loaded. ``transform_input`` is off: the
ImageNet weights (ported from TensorFlow) expect pixels scaled to [-1, 1], so the cards give mean and
std 0.5 instead of ImageNet's statistics. Module names are torchvision's.

Small-image adaptations, each applied only where the original would collapse the image:

- GoogLeNet, below 64 px (where the 7x7 stride-2 stem, a stride-2 max-pool and three more poolings would
  leave a 1x1 map): ``conv1`` becomes a 3x3 stride-1 convolution and ``maxpool1`` is dropped; the network
  then downsamples by 8 (28 px -> 4x4 map).
- Inception-v3, below 107 px (the smallest side for which the 299 px network still ends on a 2x2 map;
  it fails outright below 75 px): ``Conv2d_1a_3x3`` keeps its 3x3 kernel but with stride 1 and padding 1,
  and ``maxpool1`` is dropped (28 px -> 2x2 map, 64 px -> 6x6). Its ImageNet weights still fit.
"""

from __future__ import annotations

import logging

import torch
import torchvision
from torch import nn

from ._registry import INCEPTION_MEAN, INCEPTION_STD, register_model

__all__ = ["GoogLeNet", "InceptionV3", "googlenet", "inception_v3"]

log = logging.getLogger(__name__)

GOOGLENET_SMALL_BELOW = 64  # px
INCEPTION_V3_SMALL_BELOW = 107  # px


def _conv(in_chans: int, out: int, kernel: int, stride: int, padding: int, std: float) -> nn.Conv2d:
    conv = nn.Conv2d(in_chans, out, kernel, stride=stride, padding=padding, bias=False)
    nn.init.trunc_normal_(conv.weight, mean=0.0, std=std, a=-2, b=2)  # torchvision's init for this family
    return conv


def _drop_prefixes(state_dict: dict[str, torch.Tensor], prefixes: tuple[str, ...], what: str) -> dict:
    out = {k: v for k, v in state_dict.items() if not k.startswith(prefixes)}
    if len(out) < len(state_dict):
        log.info("%s: %d tensors of the auxiliary classifiers ignored", what, len(state_dict) - len(out))
    return out


class GoogLeNet(torchvision.models.GoogLeNet):
    """torchvision's GoogLeNet without auxiliary heads, with the features/head split and a small-image stem."""

    def __init__(self, *, num_classes: int, in_chans: int = 3, small_input: bool = False, drop_rate: float = 0.2):
        super().__init__(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=True,
                         dropout=drop_rate)
        if small_input:
            self.conv1.conv = _conv(in_chans, 64, 3, 1, 1, std=0.01)
            self.maxpool1 = nn.Identity()
        elif in_chans != 3:
            self.conv1.conv = _conv(in_chans, 64, 7, 2, 3, std=0.01)
        self.small_input = small_input
        self.num_features = 1024

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4e(self.inception4d(self.inception4c(self.inception4b(self.inception4a(x)))))
        return self.inception5b(self.inception5a(self.maxpool4(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def pretrained_filter(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return _drop_prefixes(state_dict, ("aux1.", "aux2."), "googlenet")


class InceptionV3(torchvision.models.Inception3):
    """torchvision's Inception-v3 without the auxiliary head, with the features/head split and small stem."""

    def __init__(self, *, num_classes: int, in_chans: int = 3, small_input: bool = False, drop_rate: float = 0.5):
        super().__init__(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=True,
                         dropout=drop_rate)
        if small_input:
            self.Conv2d_1a_3x3.conv = _conv(in_chans, 32, 3, 1, 1, std=0.1)
            self.maxpool1 = nn.Identity()
        elif in_chans != 3:
            self.Conv2d_1a_3x3.conv = _conv(in_chans, 32, 3, 2, 0, std=0.1)
        self.small_input = small_input
        self.num_features = 2048

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x))))
        x = self.Mixed_6a(self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x))))
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        return self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def pretrained_filter(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return _drop_prefixes(state_dict, ("AuxLogits.",), "inception_v3")


@register_model(family="inception", classifier="fc", cam_layer="inception5b", min_input_size=8, in_chans=3,
                mean=INCEPTION_MEAN, std=INCEPTION_STD, first_conv="conv1.conv",
                blocks=("conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "inception4b",
                        "inception4c", "inception4d", "inception4e", "inception5a", "inception5b"),
                imagenet_weights="torchvision:GoogLeNet_Weights",
                description="GoogLeNet / Inception-v1 (torchvision, no aux heads); 3x3 stride-1 stem below 64 px",
                reference="C. Szegedy et al., Going deeper with convolutions. CVPR 2015.")
def googlenet(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.2,
              small_input: bool | None = None) -> GoogLeNet:
    if small_input is None:
        small_input = input_size < GOOGLENET_SMALL_BELOW
    return GoogLeNet(num_classes=num_classes, in_chans=in_chans, small_input=small_input, drop_rate=drop_rate)


@register_model(family="inception", classifier="fc", cam_layer="Mixed_7c", min_input_size=19, in_chans=3,
                mean=INCEPTION_MEAN, std=INCEPTION_STD, first_conv="Conv2d_1a_3x3.conv",
                blocks=("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                        "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                        "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"),
                imagenet_weights="torchvision:Inception_V3_Weights",
                description="Inception-v3 (torchvision, no aux head); stride-1 stem below 107 px; "
                            "ImageNet weights at 299 px",
                reference="C. Szegedy et al., Rethinking the Inception architecture for computer vision. "
                          "CVPR 2016.")
def inception_v3(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.5,
                 small_input: bool | None = None) -> InceptionV3:
    if small_input is None:
        small_input = input_size < INCEPTION_V3_SMALL_BELOW
    return InceptionV3(num_classes=num_classes, in_chans=in_chans, small_input=small_input, drop_rate=drop_rate)

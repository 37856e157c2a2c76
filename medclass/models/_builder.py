"""Small helpers shared by the family files: output-size arithmetic, input-convolution swaps, fc6 folding."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["conv_out", "pool_out", "new_conv", "fold_linear_grid"]


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, ceil: bool = False) -> int:
    """Side of a convolution's / pooling's output (PyTorch's formula, no dilation)."""
    n = (size + 2 * padding - kernel) / stride
    return (math.ceil(n) if ceil else math.floor(n)) + 1


def pool_out(size: int, times: int, kernel: int = 2, stride: int = 2) -> int:
    """Side after ``times`` floor-mode poolings."""
    for _ in range(times):
        size = conv_out(size, kernel, stride)
    return size


def new_conv(like: nn.Conv2d, in_chans: int, *, kernel_size: int | None = None, stride: int | None = None,
             padding: int | None = None) -> nn.Conv2d:
    """A fresh ``Conv2d`` like ``like`` with ``in_chans`` inputs (and optionally another kernel/stride/padding)."""
    conv = nn.Conv2d(in_chans, like.out_channels, kernel_size=kernel_size or like.kernel_size,
                     stride=like.stride if stride is None else stride,
                     padding=like.padding if padding is None else padding, bias=like.bias is not None)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def fold_linear_grid(weight: torch.Tensor, channels: int, from_side: int, to_side: int) -> torch.Tensor:
    """Fold a linear layer over a flattened ``channels x from_side x from_side`` map to a smaller grid.

    Each weight of the small grid is the sum of the weights over the region of the large grid that
    adaptive average pooling maps onto it, so the layer gives the same output when the large map is
    the small one upsampled. Used to keep ImageNet fc6 weights of AlexNet / VGG when small images are
    pooled to a grid smaller than 6x6 / 7x7.
    """
    w = weight.reshape(weight.shape[0], channels, from_side, from_side)
    w = F.adaptive_avg_pool2d(w, to_side) * (from_side * from_side) / (to_side * to_side)
    return w.reshape(weight.shape[0], channels * to_side * to_side)

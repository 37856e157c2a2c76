"""Turning a 2D network into a 3D one, layer by layer: ACS convolutions or inflated 3D kernels.

:func:`convert_to_3d` walks a 2D model and replaces, in place,

- each ``nn.Conv2d`` by an :class:`ACSConv` (``mode="acs"``) or by an ``nn.Conv3d`` whose ``k x k`` kernel is
  inflated to ``k x k x k`` (``mode="3d"``: the 2D weights repeated along the new axis and divided by k, so a
  volume of identical slices gives what the 2D network gave for one slice; Carreira & Zisserman, "Quo Vadis,
  Action Recognition?", CVPR 2017);
- ``BatchNorm2d``, ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d`` and ``Dropout2d``
  by their 3D counterparts with the same state (pooling windows become cubes);

and refuses any other module that only works in 2D. Everything else (activations, linear layers, containers,
``forward_features``/``forward_head``) is kept, so the converted model has the same module names.

**ACS convolutions** (J. Yang et al., "Reinventing 2D Convolutions for 3D Images", IEEE JBHI 25(8), 2021):
the output channels of a 2D ``k x k`` convolution are split into three groups (about a third each); the
first group convolves the axial plane (kernel ``1 x k x k`` on ``(D, H, W)``), the second the coronal plane
(``k x 1 x k``), the third the sagittal plane (``k x k x 1``), and the three outputs are concatenated.
The weights keep the 2D shape ``(out, in, k, k)`` and the state dict the 2D keys, so ImageNet weights or a
medclass 2D run load unchanged. This is a small implementation of our own (three ``conv3d`` calls) rather
than the ``acsconv`` package, which would add a dependency for about forty lines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ACSConv", "convert_to_3d", "acs_split"]


def acs_split(out_channels: int) -> tuple[int, int, int]:
    """Output channels per plane (axial, coronal, sagittal): about a third each, the remainder to the first."""
    base, rest = divmod(out_channels, 3)
    return tuple(base + (i < rest) for i in range(3))


class ACSConv(nn.Module):
    """A 2D convolution's weights applied to volumes ``(N, C, D, H, W)`` along three orthogonal planes.

    ``weight`` is ``(out, in / groups, k, k)`` and ``bias`` ``(out,)``, exactly as in ``nn.Conv2d``.
    Strides and dilations apply to all three axes; the kernel's unit axis gets the padding that keeps the
    three groups' outputs the same size (``padding - dilation * (k - 1) / 2``, 0 for the usual "same" padding).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0, dilation: int = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
        if not isinstance(kernel_size, int) and kernel_size[0] != kernel_size[1]:
            raise ValueError(f"ACSConv needs square kernels; got {kernel_size}.")
        pad = padding if isinstance(padding, int) else padding[0]
        dil = dilation if isinstance(dilation, int) else dilation[0]
        st = stride if isinstance(stride, int) else stride[0]
        if isinstance(padding, str) or (not isinstance(padding, int) and padding[0] != padding[1]) or \
                (not isinstance(stride, int) and stride[0] != stride[1]) or \
                (not isinstance(dilation, int) and dilation[0] != dilation[1]):
            raise ValueError(f"ACSConv needs equal strides, paddings and dilations on both axes; got stride={stride}, "
                             f"padding={padding}, dilation={dilation}.")
        unit_pad = pad - dil * (k - 1) // 2
        if k % 2 == 0 or unit_pad < 0:
            raise ValueError(f"ACSConv needs an odd kernel with at least 'same' padding; got kernel {k}, "
                             f"padding {pad}.")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (k, k)
        self.stride, self.padding, self.dilation, self.groups = st, pad, dil, groups
        self.unit_padding = unit_pad
        self.split = acs_split(out_channels)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, k, k))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)  # nn.Conv2d's default initialisation

    @classmethod
    def from_conv2d(cls, conv: nn.Conv2d) -> ACSConv:
        if conv.padding_mode != "zeros":
            raise ValueError(f"ACSConv supports zero padding only; got padding_mode={conv.padding_mode!r}.")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                  conv.groups, conv.bias is not None)
        new.weight = conv.weight
        new.bias = conv.bias
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"ACSConv expects volumes (N, C, D, H, W); got shape {tuple(x.shape)}.")
        p, u = self.padding, self.unit_padding
        outs, start = [], 0
        for axis, n in zip((2, 3, 4), self.split, strict=True):
            if n == 0:
                continue
            w = self.weight[start:start + n].unsqueeze(axis)  # (n, in, k, k) -> a kernel flat along one axis
            b = self.bias[start:start + n] if self.bias is not None else None
            pad = tuple(u if a == axis else p for a in (2, 3, 4))
            outs.append(F.conv3d(x, w, b, self.stride, pad, self.dilation, self.groups))
            start += n
        return torch.cat(outs, 1)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, split={self.split}, bias={self.bias is not None}")


def _inflate(conv: nn.Conv2d) -> nn.Conv3d:
    k = conv.kernel_size[0]
    new = nn.Conv3d(conv.in_channels, conv.out_channels, (k, *conv.kernel_size), (conv.stride[0], *conv.stride),
                    (conv.padding[0], *conv.padding), (conv.dilation[0], *conv.dilation), conv.groups,
                    conv.bias is not None, device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(conv.weight.unsqueeze(2).expand_as(new.weight) / k)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _pool_args(m) -> dict:
    return {k: getattr(m, k) for k in ("kernel_size", "stride", "padding", "ceil_mode")}


def _convert(m: nn.Module, mode: str) -> nn.Module | None:
    """The 3D counterpart of one module, or None when it is kept as it is."""
    if isinstance(m, nn.Conv2d):
        return ACSConv.from_conv2d(m) if mode == "acs" else _inflate(m)
    if isinstance(m, nn.BatchNorm2d):
        bn = nn.BatchNorm3d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats,
                            device=m.weight.device if m.affine else None)
        bn.load_state_dict(m.state_dict())
        return bn
    if isinstance(m, nn.MaxPool2d):
        return nn.MaxPool3d(dilation=m.dilation, **_pool_args(m))
    if isinstance(m, nn.AvgPool2d):
        return nn.AvgPool3d(count_include_pad=m.count_include_pad, **_pool_args(m))
    if isinstance(m, nn.AdaptiveAvgPool2d):
        size = m.output_size if isinstance(m.output_size, int) else m.output_size[0]
        return nn.AdaptiveAvgPool3d(size)
    if isinstance(m, nn.AdaptiveMaxPool2d):
        size = m.output_size if isinstance(m.output_size, int) else m.output_size[0]
        return nn.AdaptiveMaxPool3d(size)
    if isinstance(m, nn.Dropout2d):
        return nn.Dropout3d(m.p)
    name = type(m).__name__
    if name.endswith("2d") or isinstance(m, (nn.ConvTranspose2d, nn.Upsample, nn.PixelShuffle)):
        raise ValueError(f"convert_to_3d cannot convert {name}; only Conv2d, BatchNorm2d, pooling and Dropout2d "
                         f"have 3D counterparts here.")
    return None


def convert_to_3d(model: nn.Module, mode: str = "acs") -> nn.Module:
    """Replace the 2D layers of ``model`` by 3D ones, in place (module docstring); returns ``model``.

    Args:
        mode: ``"acs"`` (ACS convolutions: 2D weights kept as they are) or ``"3d"`` (kernels inflated to cubes).
    """
    if mode not in ("acs", "3d"):
        raise ValueError(f"mode must be 'acs' or '3d'; got {mode!r}.")
    for name, child in list(model.named_children()):
        new = _convert(child, mode)
        if new is None:
            convert_to_3d(child, mode)
        else:
            setattr(model, name, new)
    return model

"""Volumes through 2D networks: 2.5D (a few planes as channels) and slice pooling (every slice, then pooled).

Both take volumes ``(N, C, D, H, W)`` in the canonical layout of :mod:`medclass.data.series` (D to superior,
H to posterior, W to the patient's left) and reuse the 2D families unchanged.

**2.5D** (:class:`Planes25D`): three 2D views of the volume stacked as channels of one 2D image, which a 2D
network classifies: ``planes="orthogonal"`` takes the middle axial, coronal and sagittal planes,
``"mip"`` the maximum-intensity projections along the three axes, ``"slab"`` the ``slab`` middle axial slices.
Coronal and sagittal views are shown as a radiologist sees them (superior at the top). With one input channel
the three views fill the three colour channels, so ``resnet18_25d`` loads ImageNet weights as they are. (The
"ResNet-18 + 2.5D" rows of MedMNIST v2 are another design, 2D kernels run slice by slice inside a 3D network;
:class:`SlicePooling` with mean pooling is its closest relative here.)

**Slice pooling** (:class:`SlicePooling`): a 2D network runs on every axial slice (the batch folded to
``N * D`` images), each slice's feature map is averaged to one descriptor, and the ``D`` descriptors are pooled
into one per volume by ``mean``, ``max`` or gated **attention** (M. Ilse, J. Tomczak, M. Welling,
"Attention-based Deep Multiple Instance Learning", ICML 2018, eq. 9:
``a_d = softmax_d(w' (tanh(V h_d) * sigmoid(U h_d)))``, ``z = sum_d a_d h_d``), then one linear layer.
``forward_features`` returns the slices' feature maps stacked along D, a 5D map ``(N, F, D, h, w)`` (the
output of the ``stack`` module), so Grad-CAM works on it as on a 3D network. ``forward_with_attention`` returns
the logits and each slice's weight: the attention for ``attn``, ``1 / D`` for ``mean``, and for ``max`` the
share of features whose maximum lies in that slice. MONAI's ``MILModel`` has an ungated attention with a fixed
2048-unit hidden layer and expects a torchvision backbone; this one is gated, sized to the features and takes
any registered 2D family. The same pooling serves cases of several 2D views (a bag of images per case).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from ._registry import IMAGENET_MEAN, IMAGENET_STD, register_model
from .resnet import SMALL_INPUT_BELOW, ResNet, _create
from .resnet9 import ResNet9

__all__ = ["Planes25D", "SlicePooling", "GatedAttention", "resnet18_25d", "resnet9_25d", "slices_resnet9_mean",
           "slices_resnet9_max", "slices_resnet9_attn"]

PLANES = ("orthogonal", "mip", "slab")
POOLS = ("mean", "max", "attn")


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A 2D network's state dict under the wrapper's ``prefix`` (weights saved from the bare 2D model)."""
    return {(k if k.startswith(prefix) else prefix + k): v for k, v in state.items()}


class Planes25D(nn.Module):
    """A 2D ``backbone`` on three planes of the volume stacked as channels (module docstring)."""

    def __init__(self, backbone: nn.Module, *, planes: str = "orthogonal", slab: int = 3):
        super().__init__()
        if planes not in PLANES:
            raise ValueError(f"planes must be one of {', '.join(PLANES)}; got {planes!r}.")
        self.backbone, self.planes, self.slab = backbone, planes, int(slab)
        self.num_features = backbone.num_features

    def to_planes(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, D, H, W)`` -> ``(N, 3C, H, W)`` (``(N, slab * C, H, W)`` for ``slab``)."""
        if x.ndim != 5:
            raise ValueError(f"{type(self).__name__} expects volumes (N, C, D, H, W); got shape {tuple(x.shape)}.")
        n, c, d, h, w = x.shape
        if self.planes == "slab":
            k = min(self.slab, d)
            start = d // 2 - k // 2
            return x[:, :, start:start + k].reshape(n, c * k, h, w)
        if self.planes == "orthogonal":
            axial, coronal, sagittal = x[:, :, d // 2], x[:, :, :, h // 2], x[:, :, :, :, w // 2]
        else:
            axial, coronal, sagittal = x.amax(2), x.amax(3), x.amax(4)
        coronal, sagittal = coronal.flip(2), sagittal.flip(2)  # superior at the top
        views = [v if v.shape[2:] == (h, w) else F.interpolate(v, size=(h, w), mode="bilinear", align_corners=False)
                 for v in (axial, coronal, sagittal)]
        return torch.cat(views, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(self.to_planes(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.backbone.forward_head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def pretrained_filter(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return _prefixed(state, "backbone.")


class GatedAttention(nn.Module):
    """Gated attention pooling weights (Ilse et al. 2018, eq. 9): ``(N, D, F)`` -> ``(N, D)``, summing to 1."""

    def __init__(self, features: int, hidden: int = 64):
        super().__init__()
        self.V, self.U, self.w = nn.Linear(features, hidden), nn.Linear(features, hidden), nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h))).squeeze(-1), dim=1)


class SlicePooling(nn.Module):
    """A 2D ``backbone`` on every axial slice, slice descriptors pooled by mean, max or gated attention."""

    def __init__(self, backbone: nn.Module, *, num_classes: int, pool: str = "attn", hidden: int = 64,
                 drop_rate: float = 0.0):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}; got {pool!r}.")
        backbone.fc = nn.Identity()  # the backbone's own head is unused: only its feature maps are
        self.backbone, self.pool = backbone, pool
        self.num_features = backbone.num_features
        self.stack = nn.Identity()  # output: the slices' feature maps as one (N, F, D, h, w) map (the CAM layer)
        self.attention = GatedAttention(self.num_features, hidden) if pool == "attn" else None
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)
        self.last_attention: torch.Tensor | None = None  # (N, D) slice weights of the latest forward pass

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"SlicePooling expects volumes (N, C, D, H, W); got shape {tuple(x.shape)}.")
        n, c, d, h, w = x.shape
        f = self.backbone.forward_features(x.transpose(1, 2).reshape(n * d, c, h, w))  # (N * D, F, h', w')
        return self.stack(f.reshape(n, d, *f.shape[1:]).transpose(1, 2).contiguous())

    def _pool(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (N, D, F): one descriptor per slice (pooled by a layer whose backward gives a contiguous gradient, which
        # MONAI's Grad-CAM needs; mean((3, 4)) gives an expanded one). A fixed kernel rather than adaptive pooling
        # to (None, 1, 1): ONNX has no adaptive pooling whose output size depends on the input (the slice count)
        kernel = (1, int(feats.shape[3]), int(feats.shape[4]))
        h = F.avg_pool3d(feats, kernel).flatten(2).transpose(1, 2)
        n, d, _ = h.shape
        if self.pool == "attn":
            a = self.attention(h)
            return (a.unsqueeze(2) * h).sum(1), a
        if self.pool == "mean":
            return h.mean(1), torch.full((n, d), 1.0 / d, dtype=h.dtype, device=h.device)
        z, where = h.max(1)
        share = F.one_hot(where, d).to(h.dtype).mean(1)  # (N, D): features whose maximum is in each slice
        return z, share

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        z, a = self._pool(x)
        self.last_attention = a.detach()
        return z if pre_logits else self.fc(self.drop(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(N, classes)`` and slice weights ``(N, D)`` (each row sums to 1)."""
        z, a = self._pool(self.forward_features(x))
        self.last_attention = a.detach()
        return self.fc(self.drop(z)), a

    def pretrained_filter(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return _prefixed({k: v for k, v in state.items() if not k.startswith("fc.")}, "backbone.")


# --- registered variants ---------------------------------------------------------------------------------


def _resnet9_blocks(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{b}" for b in ("stem", "layer1", "layer2", "layer3"))


@register_model(family="2.5d", classifier="backbone.fc", cam_layer="backbone.layer4", input_size=28,
                min_input_size=8, in_chans=3, mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv="backbone.conv1",
                blocks=tuple(f"backbone.{b}" for b in ("conv1", "layer1", "layer2", "layer3", "layer4")),
                imagenet_weights="torchvision:ResNet18_Weights", spatial_dims=3,
                reference="K. He et al., CVPR 2016; 2.5D: three orthogonal planes as the channels of one image.",
                description="2.5D ResNet-18: middle axial/coronal/sagittal planes (or MIPs) as 3 channels")
def resnet18_25d(*, num_classes: int, in_chans: int = 1, input_size: int = 28, planes: str = "orthogonal",
                 slab: int = 3, drop_rate: float = 0.0, small_input: bool | None = None) -> Planes25D:
    chans = in_chans * (slab if planes == "slab" else 3)
    small = input_size < SMALL_INPUT_BELOW if small_input is None else small_input
    backbone: ResNet = _create(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_chans=chans,
                               input_size=input_size, drop_rate=drop_rate, small_input=small)
    return Planes25D(backbone, planes=planes, slab=slab)


@register_model(family="2.5d", classifier="backbone.fc", cam_layer="backbone.layer3", input_size=28,
                min_input_size=8, first_conv="backbone.stem.0.0", blocks=_resnet9_blocks("backbone."),
                spatial_dims=3,
                reference="D. Page, How to train your ResNet. Myrtle.ai, 2018; 2.5D planes as channels.",
                description="2.5D ResNet-9: three planes (or MIPs) as channels, width 24: a 2D network's cost")
def resnet9_25d(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 24,
                planes: str = "orthogonal", slab: int = 3, drop_rate: float = 0.0) -> Planes25D:
    chans = in_chans * (slab if planes == "slab" else 3)
    return Planes25D(ResNet9(num_classes=num_classes, in_chans=chans, width=width, input_size=input_size,
                             drop_rate=drop_rate), planes=planes, slab=slab)


_SLICES = dict(family="slices", classifier="fc", cam_layer="stack", input_size=28, min_input_size=8,
               first_conv="backbone.stem.0.0", spatial_dims=3,
               reference="M. Ilse, J. Tomczak, M. Welling, Attention-based Deep Multiple Instance Learning. ICML 2018.")


def _slices(pool: str, num_classes: int, in_chans: int, input_size: int, width: int, hidden: int,
            drop_rate: float) -> SlicePooling:
    backbone = ResNet9(num_classes=num_classes, in_chans=in_chans, width=width, input_size=input_size)
    return SlicePooling(backbone, num_classes=num_classes, pool=pool, hidden=hidden, drop_rate=drop_rate)


@register_model(**_SLICES, blocks=_resnet9_blocks("backbone."),
                description="ResNet-9 (width 8) on every axial slice, slice features averaged")
def slices_resnet9_mean(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 8,
                        drop_rate: float = 0.0) -> SlicePooling:
    return _slices("mean", num_classes, in_chans, input_size, width, 64, drop_rate)


@register_model(**_SLICES, blocks=_resnet9_blocks("backbone."), supports_cam=False,
                description="ResNet-9 (width 8) on every axial slice, slice features max-pooled")
def slices_resnet9_max(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 8,
                       drop_rate: float = 0.0) -> SlicePooling:
    return _slices("max", num_classes, in_chans, input_size, width, 64, drop_rate)


@register_model(**_SLICES, blocks=(*_resnet9_blocks("backbone."), "attention"), supports_cam=False,
                description="ResNet-9 (width 8) on every axial slice, gated attention over slices (MIL)")
def slices_resnet9_attn(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 8,
                        hidden: int = 64, drop_rate: float = 0.0) -> SlicePooling:
    return _slices("attn", num_classes, in_chans, input_size, width, hidden, drop_rate)

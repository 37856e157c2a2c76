"""Cases of several images: each view (or slice) through a 2D encoder, the per-view features fused into one.

A case (a manifest's ``case_id``: a chest X-ray study's frontal and lateral views, a mammogram's four views, the
slices of a stack) reaches the network as ``(N, C, V, H, W)``: ``V`` images of ``C`` channels each, in the
configured view order (:mod:`medclass.data.cases`). :class:`MultiViewNet` wraps any registered 2D family:

- **encoders**: one network shared by every view (``shared``: ``V`` times fewer weights, the usual choice when
  views look alike) or one per view (``per-view``: CC and MLO mammograms, frontal and lateral radiographs);
- **fusion** of the ``V`` descriptors (each encoder's globally pooled features):

  - ``concat``: the descriptors side by side in view order, then a hidden layer and the classifier: the fusion
    that sees *which* view shows what, and learns a class decided by the combination of views (a rule like "the
    finding is on the same side in both views");
  - ``mean`` / ``max`` / ``attn``: order-free pooling as in :class:`medclass.models.slices.SlicePooling` (gated
    attention of Ilse et al. 2018), for slices or any number of interchangeable views. Mean pooling followed by a
    linear classifier cannot learn such a combination: the mean of a "different sides" pair's descriptors is the
    midpoint of the two "same side" pairs' means. Max and attention pooling are not linear in the views and can.
    Measured on the synthetic two-view task of ``tests/unit/runs/test_multiview.py`` (120 test cases, 12 epochs,
    shared / per-view encoder): test AUC concat 1.000 / 1.000, max 1.000 / 1.000, attn 0.792 / 0.872, mean
    0.486 / 0.537, and either view alone 0.46 / 0.45.

Written here because neither torchvision, timm nor MONAI has a multi-view wrapper for arbitrary 2D backbones
(MONAI's ``MILModel`` is attention pooling over a fixed torchvision ResNet). ``forward_features`` returns the
views' feature maps stacked along V, ``(N, F, V, h, w)`` (the ``stack`` module's output), as slice pooling does,
so a 3D Grad-CAM on ``stack`` gives one heatmap per view.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .slices import GatedAttention

__all__ = ["MultiViewNet", "FUSIONS", "ENCODERS"]

FUSIONS = ("concat", "mean", "max", "attn")
ENCODERS = ("shared", "per-view")


class MultiViewNet(nn.Module):
    """``V`` views through shared or per-view 2D encoders, fused (module docstring).

    Args:
        make_encoder: builds one 2D encoder (a registered model exposing ``forward_features`` and ``num_features``;
            its own classifier is unused).
        views: number of views per case.
        num_classes: outputs of the classifier.
        probe: one view's ``(C, H, W)``: the encoder runs once on zeros of that shape to learn its feature-map
            channels (a family's ``num_features`` is the width after its own fully connected layers for AlexNet,
            VGG and LeNet, not the map's).
        fusion: concat, mean, max or attn.
        encoder: shared or per-view.
        hidden: width of the hidden layer after ``concat`` and of the attention.
        drop_rate: dropout before the classifier.
    """

    def __init__(self, make_encoder: Callable[[], nn.Module], *, views: int, num_classes: int,
                 probe: tuple[int, int, int], fusion: str = "concat", encoder: str = "shared", hidden: int = 64,
                 drop_rate: float = 0.0):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}; got {fusion!r}.")
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}; got {encoder!r}.")
        if views < 1:
            raise ValueError(f"views must be >= 1; got {views}.")
        self.views, self.fusion, self.encoder = int(views), fusion, encoder
        self.encoders = nn.ModuleList(make_encoder() for _ in range(1 if encoder == "shared" else views))
        self.num_features = _map_channels(self.encoders[0], probe)
        self.stack = nn.Identity()  # output: the views' feature maps as one (N, F, V, h, w) map (the CAM layer)
        f = self.num_features
        self.attention = GatedAttention(f, hidden) if fusion == "attn" else None
        self.mix = nn.Sequential(nn.Linear(views * f, hidden), nn.ReLU(inplace=True)) if fusion == "concat" else None
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(hidden if fusion == "concat" else f, num_classes)
        self.last_weights: torch.Tensor | None = None  # (N, V) views' weights of the latest pass (attn, mean)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[2] != self.views:
            raise ValueError(f"MultiViewNet expects cases (N, C, {self.views}, H, W); got shape {tuple(x.shape)}.")
        n, c, v, h, w = x.shape
        if self.encoder == "shared":
            f = self.encoders[0].forward_features(x.transpose(1, 2).reshape(n * v, c, h, w))  # (N * V, F, h', w')
            f = f.reshape(n, v, *f.shape[1:])
        else:
            f = torch.stack([enc.forward_features(x[:, :, i]) for i, enc in enumerate(self.encoders)], 1)
        return self.stack(f.transpose(1, 2).contiguous())

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        # (N, V, F): one descriptor per view, pooled as in slices.py (a contiguous gradient for Grad-CAM; a fixed
        # kernel, since ONNX has no adaptive pooling whose output size depends on the input)
        h = F.avg_pool3d(x, (1, int(x.shape[3]), int(x.shape[4]))).flatten(2).transpose(1, 2)
        if self.fusion == "concat":
            z = self.mix(h.flatten(1))
        elif self.fusion == "attn":
            a = self.attention(h)
            self.last_weights = a.detach()
            z = (a.unsqueeze(2) * h).sum(1)
        elif self.fusion == "mean":
            z = h.mean(1)
        else:
            z = h.amax(1)
        return z if pre_logits else self.fc(self.drop(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _map_channels(encoder: nn.Module, probe: tuple[int, int, int]) -> int:
    """Channels of ``encoder.forward_features`` on one zero view of shape ``probe`` (in eval mode, no gradient)."""
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            f = encoder.forward_features(torch.zeros(1, *probe))
    finally:
        encoder.train(was_training)
    if f.ndim != 4:
        raise ValueError(f"{type(encoder).__name__}.forward_features gives shape {tuple(f.shape)}, not a feature map "
                         f"(N, F, h, w): it cannot encode views.")
    return int(f.shape[1])

"""Where a volume model looks: 3D heatmaps, slice weights, and the hottest point.

:func:`volume_heatmaps` is :func:`~medclass.interpret.heatmaps.compute_heatmaps` for volumes: MONAI's CAM,
Grad-CAM and Grad-CAM++ compute on 5D feature maps as on 4D ones and upsample trilinearly, so a 3D network
(``resnet18_3d``, ``resnet18_acs``, ``cnn3d_small``) and a slice-pooling network (whose ``stack`` layer stacks
the slices' 2D maps into one ``(N, F, D, h, w)`` map) are explained through the layer their card names.
A 2.5D network's map is 2D (three planes mixed as channels), so its Grad-CAM has no place in the volume:
it is refused with the alternative, occlusion sensitivity, which works for any model.

:func:`slice_weights` returns the per-slice weights of a slice-pooling model (the attention of the MIL
model), and :func:`hottest_point` the voxel the montages of :mod:`medclass.reports.volume_figures` pass
through.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .heatmaps import METHODS, compute_heatmaps, resolve_layer

__all__ = ["volume_heatmaps", "slice_weights", "hottest_point"]


def _feature_ndim(model: nn.Module, layer: str, x: torch.Tensor) -> int:
    """Number of axes of ``layer``'s output for one input volume (a forward pass without gradients)."""
    got = []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, a, o: got.append(o.ndim))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x[:1])
    finally:
        handle.remove()
        model.train(was_training)
    return got[0]


def volume_heatmaps(model: nn.Module, x: torch.Tensor, card, method: str = "gradcam", class_idx: int | None = None,
                    target_layer: str | None = None, occlusion_mask: int | None = None) -> np.ndarray:
    """Heatmaps ``(N, D, H, W)`` in [0, 1] for volumes ``x`` ``(N, C, D, H, W)`` (module docstring).

    Args:
        model: a volume model (``card.spatial_dims == 3``).
        x: the normalised input batch, as the model sees it.
        card: the model's :class:`~medclass.models.ModelCard` (its ``cam_layer`` and ``classifier``).
        method: cam, gradcam, gradcam++ or occlusion.
        class_idx: the class to explain; None explains each volume's predicted class.
        target_layer: another layer than the card's ``cam_layer``.
        occlusion_mask: occlusion only: side of the occluding cube in voxels (default: a quarter of the side).

    Raises:
        ConfigError: not a volume batch or a volume model; a CAM method on a model whose feature map is 2D; CAM
            on a model whose head is not pooling + linear.
    """
    if x.ndim != 5:
        raise ConfigError(f"volume_heatmaps needs volumes (N, C, D, H, W); got shape {tuple(x.shape)}. Use "
                          f"compute_heatmaps for 2D images.")
    if getattr(card, "spatial_dims", 2) != 3:
        raise ConfigError(f"{card.name} is a 2D model (spatial_dims={card.spatial_dims}); volume_heatmaps explains "
                          f"volume models. Use compute_heatmaps.")
    if method not in METHODS:
        return compute_heatmaps(model, x, method)  # the same unknown-method message as for images
    layer = resolve_layer(model, target_layer or card.cam_layer)
    if method != "occlusion":
        ndim = _feature_ndim(model, layer, x)
        if ndim != 5:
            raise ConfigError(f"{card.name}: the output of {layer!r} is a {ndim - 2}D map (e.g. planes stacked as "
                              f"channels), which cannot be placed in the volume, so {method} does not apply. Use "
                              f"method='occlusion', which hides parts of the volume itself.")
        if method == "cam" and not card.supports_cam:
            raise ConfigError(f"{card.name}: CAM needs a head that is global pooling then a linear layer, which this "
                              f"model does not have. Use method='gradcam'.")
    return compute_heatmaps(model, x, method, class_idx=class_idx, target_layer=layer, classifier=card.classifier,
                            occlusion_mask=occlusion_mask)


def slice_weights(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Each slice's weight in the pooled prediction, ``(N, D)``, rows summing to 1 (a slice-pooling model).

    For gated-attention pooling these are the attention weights; for mean pooling ``1 / D``; for max pooling
    the share of features whose maximum lies in the slice.

    Raises:
        ConfigError: the model does not pool over slices.
    """
    fwd = getattr(model, "forward_with_attention", None)
    if not callable(fwd):
        raise ConfigError(f"{type(model).__name__} does not pool over slices, so it has no slice weights. Use a "
                          f"slices_* model (e.g. slices_resnet9_attn), or volume_heatmaps.")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _, weights = fwd(x.float())
    finally:
        model.train(was_training)
    return weights.cpu().numpy().astype(np.float64)


def hottest_point(heatmap: np.ndarray) -> tuple[int, int, int]:
    """The voxel ``(d, h, w)`` of a heatmap's maximum (the first one, in C order, when several tie)."""
    h = np.asarray(heatmap)
    if h.ndim != 3:
        raise ValueError(f"hottest_point needs one heatmap (D, H, W); got shape {h.shape}.")
    return tuple(int(i) for i in np.unravel_index(int(np.nanargmax(h)), h.shape))

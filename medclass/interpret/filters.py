"""What a network has learned to look for: first-layer filters, and a layer's activation maps for one image."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .heatmaps import resolve_layer

__all__ = ["first_conv_filters", "layer_activations"]


def first_conv_filters(model: nn.Module) -> tuple[str, np.ndarray]:
    """Name and weights ``(out_channels, in_channels, *kernel)`` of the model's first convolution."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            return name, m.weight.detach().float().cpu().numpy()
    raise ValueError("The model has no convolution layer, so there are no filters to show.")


@torch.no_grad()
def layer_activations(model: nn.Module, x: torch.Tensor, layer: str) -> np.ndarray:
    """Output of module ``layer`` for a single input ``(1, C, *spatial)``: ``(channels, *spatial)``."""
    resolve_layer(model, layer)
    module = dict(model.named_modules())[layer]
    captured = {}
    handle = module.register_forward_hook(lambda _m, _i, out: captured.setdefault("out", out))
    was_training = model.training
    model.eval()
    try:
        model(x[:1])
    finally:
        handle.remove()
        model.train(was_training)
    out = captured["out"]
    if not isinstance(out, torch.Tensor) or out.ndim < 3:
        raise ValueError(f"Layer {layer!r} does not output a feature map (got {type(out).__name__}).")
    return out[0].float().cpu().numpy()

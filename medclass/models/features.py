"""Deep features for classical classifiers: a network's pooled activations as a ``(n_images, n_features)`` array.

The early transfer-learning studies in medical imaging (chest X-ray, Alzheimer's MRI) fed the activations
of a pretrained CNN to an SVM or a logistic regression. :func:`extract_features` gives that array for
scikit-learn: by default the pre-logits vector (``forward_head(..., pre_logits=True)``: the globally pooled
last feature map for most networks, the last hidden layer for the fully connected heads of LeNet, AlexNet,
VGG and the MLP), or the output of any named module, average-pooled over its spatial (or token) axes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, did_you_mean

__all__ = ["extract_features"]


def _pool(out: torch.Tensor) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        out = out[0]
    if out.ndim > 3:  # (N, C, *spatial): global average pool
        return out.flatten(2).mean(2)
    if out.ndim == 3:  # (N, tokens, D): average over tokens
        return out.mean(1)
    return out.reshape(len(out), -1)


@torch.no_grad()
def extract_features(model: nn.Module, batches: torch.Tensor | Iterable, layer: str | None = None,
                     batch_size: int = 256) -> np.ndarray:
    """Features ``(n_images, n_features)`` (float32) of every image in ``batches``, in order.

    Args:
        model: a medclass model (``forward_features`` / ``forward_head``); run in eval mode, then restored.
        batches: one ``(N, C, H, W)`` tensor, or an iterable of such tensors (or of ``(images, labels)``
            pairs, as data loaders yield), already normalised as the model expects.
        layer: a module name (``"layer3"``, ``"features.denseblock3"``): its output, average-pooled over the
            spatial or token axes. ``None``: the pre-logits features.
        batch_size: how many images go through at once when ``batches`` is a single tensor.

    Example:
        >>> X = extract_features(create_model("resnet18", num_classes=2, pretrained="imagenet"), images)
        >>> sklearn.svm.LinearSVC().fit(X, y)  # doctest: +SKIP
    """
    if layer is not None:
        modules = dict(model.named_modules())
        if layer not in modules or not layer:
            names = [n for n in modules if n]
            raise ConfigError(f"The model has no layer named {layer!r}.{did_you_mean(layer, names)} Its top-level "
                              f"modules are: {', '.join(n for n in names if '.' not in n)}.")
    if isinstance(batches, torch.Tensor):
        batches = torch.split(batches, batch_size)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = model.training
    model.eval()
    captured: list[torch.Tensor] = []
    handle = None
    if layer is not None:
        handle = dict(model.named_modules())[layer].register_forward_hook(
            lambda m, args, out: captured.append(_pool(out).float().cpu()))
    out: list[torch.Tensor] = []
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            x = x.to(device)
            if layer is None:
                out.append(model.forward_head(model.forward_features(x), pre_logits=True).float().cpu())
            else:
                captured.clear()
                model(x)
                out.append(captured[0])  # first call of the layer in this forward pass
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    if not out:
        raise ConfigError("extract_features got no images (an empty batch iterable).")
    return torch.cat(out).numpy()

"""Pixel baselines: logistic regression and a multi-layer perceptron on the flattened image.

``logreg`` is one linear layer from the ``C*H*W`` pixels to the classes (softmax or sigmoid regression,
depending on the task's loss); ``mlp`` puts two ReLU hidden layers (``width`` and ``width // 2`` units,
512 and 256 by default) before it, the "multi-layer perceptron" baseline of MedMNIST-style comparisons.
Both are built for one image size (``in_chans * input_size**2`` inputs) and say so when given another.

To keep the features/head contract of every medclass model, ``forward_features`` is the identity: the
"feature map" is the image itself (module ``features``, see :class:`PixelMap`), so Grad-CAM on it
weighs the image by the class's mean pixel weight. ``forward_head(x, pre_logits=True)`` returns the last
hidden layer (the pixels for ``logreg``), which is what a frozen-feature probe uses. The original CAM
does not apply (the classifier sees every pixel, not a pooled channel vector).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DataError
from ._registry import register_model

__all__ = ["PixelMLP", "PixelMap", "logreg", "mlp"]


class PixelMap(nn.Module):
    """The image itself as the feature map (an identity), differentiable in eval mode.

    Gradient-based saliency needs the gradient at this layer's output. The image usually does not require
    gradients, so in eval mode with autograd on (as Grad-CAM runs) the output is made a leaf that does.
    In training mode it is a plain identity, so training pays nothing for it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and torch.is_grad_enabled() and not x.requires_grad:
            return x.detach().requires_grad_(True)
        return x


class PixelMLP(nn.Module):
    """Flatten, optional ReLU hidden layers, dropout, linear classifier."""

    def __init__(self, *, num_classes: int, in_chans: int = 1, input_size: int = 28, hidden: tuple[int, ...] = (),
                 drop_rate: float = 0.0):
        super().__init__()
        self.input_shape = (in_chans, input_size, input_size)
        self.features = PixelMap()
        dims = (in_chans * input_size * input_size, *hidden)
        self.hidden = nn.Sequential(*[nn.Sequential(nn.Linear(a, b), nn.ReLU(inplace=True))
                                      for a, b in zip(dims[:-1], dims[1:], strict=True)])
        self.num_features = dims[-1]
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            c, s, _ = self.input_shape
            raise DataError(f"{type(self).__name__} was built for {c}x{s}x{s} images (one weight per pixel) but got "
                            f"{'x'.join(map(str, x.shape[1:]))}. Build it with in_chans/input_size matching the "
                            f"data, or resize the images.")
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.hidden(torch.flatten(x, 1))
        return x if pre_logits else self.fc(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(family="linear", classifier="fc", cam_layer="features", min_input_size=1, supports_cam=False,
                description="logistic regression on the pixels: one linear layer",
                reference="D. R. Cox, The regression analysis of binary sequences. JRSS B, 1958.")
def logreg(*, num_classes: int, in_chans: int = 1, input_size: int = 28, drop_rate: float = 0.0) -> PixelMLP:
    return PixelMLP(num_classes=num_classes, in_chans=in_chans, input_size=input_size, drop_rate=drop_rate)


@register_model(family="mlp", classifier="fc", cam_layer="features", min_input_size=1, supports_cam=False,
                blocks=("hidden.0", "hidden.1"),
                description="multi-layer perceptron on the pixels: two ReLU hidden layers (width, width/2)",
                reference="D. E. Rumelhart, G. E. Hinton, R. J. Williams, Learning representations by "
                          "back-propagating errors. Nature, 1986.")
def mlp(*, num_classes: int, in_chans: int = 1, input_size: int = 28, width: int = 512,
        drop_rate: float = 0.0) -> PixelMLP:
    return PixelMLP(num_classes=num_classes, in_chans=in_chans, input_size=input_size,
                    hidden=(width, max(width // 2, 1)), drop_rate=drop_rate)

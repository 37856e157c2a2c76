"""The model registry: names -> builders and model cards. Filled at import, read-only afterwards.

Modelled on timm's ``_registry.py``: a family file defines a network and registers one small builder
per variant with :func:`register_model`. Unlike timm, registering a name twice is an error: a silent
overwrite would make ``create_model`` build something other than what the user asked for.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError, did_you_mean

__all__ = ["ModelCard", "register_model", "get_model_card", "get_builder", "list_models", "IMAGENET_MEAN",
           "IMAGENET_STD", "INCEPTION_MEAN", "INCEPTION_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)  # weights ported from TensorFlow / JAX expect pixels scaled to [-1, 1]
INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ModelCard:
    """A model's data contract and anatomy, so downstream code never guesses.

    ``input_size`` is the side a plain ``create_model(name, num_classes=...)`` builds for (medclass's
    28 px default); every model also builds for larger images. ``mean``/``std`` and ``in_chans`` are
    the statistics the ImageNet weights were trained with (``(0.5,)`` for models without them).

    ``classifier`` names the final ``nn.Linear`` (head replacement, linear probing); ``cam_layer``
    names the module whose output is the last spatial feature map (CAM / Grad-CAM). ``supports_cam``
    says whether the classifier is applied to the global average of that map and nothing else, which
    is what the original CAM needs; Grad-CAM works for every model. ``first_conv`` is the input
    convolution (adapted when pretrained weights have another channel count). ``blocks`` lists the
    backbone's stages from input to output, for fine-tuning the last k (parameters outside every
    listed block belong to the nearest block before them, or to the first block).
    ``imagenet_weights`` is ``"torchvision:<WeightsEnum>"``, ``"timm:<name.tag>"`` or ``""``.
    ``spatial_dims`` is the number of spatial axes of the input: 2 for images ``(N, C, H, W)``, 3 for volumes
    ``(N, C, D, H, W)`` (then ``input_size`` and ``min_input_size`` are the side of a cube).
    """

    name: str
    family: str
    description: str
    input_size: int  # default side in px for create_model
    min_input_size: int  # smallest side that still leaves a feature map
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classifier: str
    cam_layer: str
    reference: str = ""
    first_conv: str = ""
    blocks: tuple[str, ...] = ()
    imagenet_weights: str = ""
    supports_cam: bool = True
    spatial_dims: int = 2

    @property
    def has_imagenet_weights(self) -> bool:
        return bool(self.imagenet_weights)


_BUILDERS: dict[str, Callable] = {}
_CARDS: dict[str, ModelCard] = {}


def register_model(*, family: str, description: str, classifier: str, cam_layer: str, input_size: int = 28,
                   min_input_size: int = 8, in_chans: int = 1, mean: tuple[float, ...] = (0.5,),
                   std: tuple[float, ...] = (0.5,), reference: str = "", first_conv: str = "",
                   blocks: tuple[str, ...] = (), imagenet_weights: str = "", supports_cam: bool = True,
                   spatial_dims: int = 2) -> Callable:
    """Decorator registering a builder ``fn(*, num_classes, in_chans, input_size, **kwargs) -> nn.Module``."""

    def wrap(fn: Callable) -> Callable:
        name = fn.__name__
        if name in _BUILDERS:
            raise RuntimeError(f"Model {name!r} is registered twice (second time in {fn.__module__}).")
        _BUILDERS[name] = fn
        _CARDS[name] = ModelCard(name=name, family=family, description=description, input_size=input_size,
                                 min_input_size=min_input_size, in_chans=in_chans, mean=tuple(mean),
                                 std=tuple(std), classifier=classifier, cam_layer=cam_layer, reference=reference,
                                 first_conv=first_conv, blocks=tuple(blocks), imagenet_weights=imagenet_weights,
                                 supports_cam=supports_cam, spatial_dims=spatial_dims)
        return fn

    return wrap


def _lookup(name: str) -> str:
    if name in _BUILDERS:
        return name
    raise ConfigError(f"Unknown model {name!r}.{did_you_mean(name, _BUILDERS)} "
                      f"Run `medclass models list` to see the {len(_BUILDERS)} registered models.")


def get_builder(name: str) -> Callable:
    return _BUILDERS[_lookup(name)]


def get_model_card(name: str) -> ModelCard:
    return _CARDS[_lookup(name)]


def list_models(pattern: str = "*", *, spatial_dims: int | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"resnet*"``), sorted; only those taking
    images (``spatial_dims=2``) or volumes (``3``) when given."""
    return sorted(n for n in _BUILDERS if fnmatch.fnmatch(n, pattern)
                  and (spatial_dims is None or _CARDS[n].spatial_dims == spatial_dims))

"""Networks by name. Importing this package registers every family.

``create_model(name, num_classes=..., in_chans=..., input_size=..., pretrained=...)`` builds any registered
network; :mod:`.pretrained` loads and adapts ImageNet weights, weight files and medclass runs;
:mod:`.transfer` freezes what a transfer strategy keeps fixed; :mod:`.features` extracts deep features;
:mod:`.checkpoint` reads and writes weights files, and ``build_model(meta)`` rebuilds a checkpoint's network.
"""

from . import (  # noqa: F401  (registration side effect)
    acs,
    alexnet,
    cnn3d,
    convnext,
    densenet,
    efficientnet,
    inception,
    lenet,
    mlp,
    resnet,
    resnet9,
    slices,
    vgg,
    vit,
)
from ._factory import build_model, count_parameters, create_model, model_metadata
from ._registry import ModelCard, get_model_card, list_models, register_model
from .checkpoint import load_weights, read_weights_metadata, save_weights
from .features import extract_features
from .pretrained import LoadReport, load_pretrained
from .transfer import TRANSFER_STRATEGIES, apply_transfer, freeze_bn_stats

__all__ = ["create_model", "get_model_card", "list_models", "register_model", "ModelCard", "count_parameters",
           "load_pretrained", "LoadReport", "apply_transfer", "freeze_bn_stats", "TRANSFER_STRATEGIES",
           "extract_features", "build_model", "model_metadata", "load_weights", "save_weights",
           "read_weights_metadata"]

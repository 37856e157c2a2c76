"""Networks by name. Importing this package registers every family."""

from . import resnet, resnet9  # noqa: F401  (registration side effect)
from ._factory import create_model
from ._registry import ModelCard, get_model_card, list_models, register_model

__all__ = ["create_model", "get_model_card", "list_models", "register_model", "ModelCard"]

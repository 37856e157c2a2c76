"""Named recipes: partial configurations that encode a way of training, chosen with ``--recipe``.

A recipe only sets what it needs; everything else keeps the :class:`~medclass.config.RunConfig`
defaults, and a YAML file or command-line overrides still win over it.

- ``medmnist-reference``: the MedMNIST v2 benchmark recipe (Yang et al., Sci. Data 2023, and
  ``MedMNIST/experiments``): small-image ResNet-18, Adam at 1e-3, learning rate x0.1 at 50% and 75% of
  100 epochs, batch 128, no augmentation, pixels normalised with mean 0.5 and std 0.5, the checkpoint
  with the best validation AUC (the first epoch reaching it: no tolerance). Use it to reproduce the paper's rows.
- ``default``: medclass's recipe for a CPU, i.e. the :class:`~medclass.config.RunConfig` defaults. See
  ``benchmarks/RESULTS.md`` for how it was chosen (on validation data only) and what it costs.
- ``default-balanced``: the default until 2026-12-02, with the class-balanced loss that leave-one-dataset-out
  selection replaced (``benchmarks/results/generalisation.md``); kept to reproduce the numbers measured with it.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ConfigError, did_you_mean

__all__ = ["RECIPES", "get_recipe", "list_recipes"]

RECIPES: dict[str, dict[str, Any]] = {
    "medmnist-reference": {
        "data": {"mean": [0.5], "std": [0.5]},
        "model": {"name": "resnet18", "dropout": 0.0},
        "train": {
            "epochs": 100, "batch_size": 128, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
            "schedule": "multistep", "milestones": [0.5, 0.75], "gamma": 0.1, "label_smoothing": 0.0,
            "class_weights": "none",
            "ema": 0.0, "early_stopping": 0, "checkpoint_tolerance": 0.0,
            "checkpoint_guard": False,
            "augment": {"hflip": False, "vflip": False, "rotate": 0.0, "scale": 0.0, "translate": 0.0,
                        "brightness": 0.0, "contrast": 0.0},
        },
        "eval": {"tta": False, "threshold": 0.5},
    },
    # The dataclass defaults of RunConfig *are* the default recipe; it overrides nothing.
    "default": {},
    # The default until 2026-12-02, kept to reproduce its published numbers: class-balanced cross-entropy.
    "default-balanced": {"train": {"class_weights": "balanced"}},
}


def list_recipes() -> list[str]:
    return list(RECIPES)


def get_recipe(name: str) -> dict[str, Any]:
    """A copy of the recipe ``name`` (nested dicts and lists included), so changing it cannot change the recipe."""
    if name not in RECIPES:
        raise ConfigError(f"Unknown recipe {name!r}.{did_you_mean(name, RECIPES)} Available: {', '.join(RECIPES)}.")
    return copy.deepcopy(RECIPES[name])

"""Run folders and the workflows that fill them: train, resume, evaluate, predict, cross-validate, ensemble.

The workflows are imported on first use (PEP 562, as in :mod:`medclass`), so a command that needs one of them
(``medclass predict``) does not load the others (cross-validation, ensembles, diagnostics).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from ..run_folder import RunFolder

_PUBLIC = {
    "TrainedModel": "predict", "load_run": "predict", "cross_validate": "crossval", "ensemble_runs": "ensemble",
    "evaluate_run": "evaluate", "lr_range_test": "diagnostics", "sanity_check": "diagnostics", "resume": "train",
    "train": "train",
}

__all__ = ["RunFolder", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(types.ModuleType):
    """Keeps a public name that is also a submodule's name (``train``) bound to the function: importing the
    submodule directly (``from medclass.runs.train import prepare_training``) would otherwise rebind the
    package's ``train`` to the module, and a later ``from medclass.runs import train`` would get the module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _PUBLIC.get(name) == name and value.__name__ == f"{__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

"""Run folders and the workflows that fill them: train, resume, evaluate, predict, cross-validate, ensemble.

The workflows are imported on first use (PEP 562, as in :mod:`medclass`), so a command that needs one of them
(``medclass predict``) does not load the others (cross-validation, ensembles, diagnostics).
"""

from __future__ import annotations

import importlib
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

"""medclass: deep-learning classification of medical images, honestly evaluated.

The public API::

    from medclass import build_config, train, evaluate_run, load_run
    cfg = build_config("default", overrides={"data": {"dataset": "breastmnist"}})
    run = train(cfg, "runs/b0")
    metrics = evaluate_run("runs/b0", split="test")
    proba = load_run("runs/b0").predict_proba(["scan.png"])

The names are imported on first use (PEP 562), so ``import medclass`` and the command line start without
loading PyTorch until a command needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_PUBLIC = {
    "RunConfig": "medclass.config", "build_config": "medclass.config",
    "load_dataset": "medclass.data.datasets",
    "create_model": "medclass.models", "list_models": "medclass.models",
    "train": "medclass.runs.train", "resume": "medclass.runs.train",
    "evaluate_run": "medclass.runs.evaluate", "load_run": "medclass.runs.predict",
    "cross_validate": "medclass.runs.crossval", "ensemble_runs": "medclass.runs.ensemble",
    "auto": "medclass.runs.auto",
    "export_run": "medclass.runs.export",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'medclass' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

"""medclass: deep-learning classification of medical images, honestly evaluated.

The public API::

    from medclass import build_config, train, evaluate_run, load_run
    cfg = build_config("default", overrides={"data": {"dataset": "breastmnist"}})
    run = train(cfg, "runs/b0")
    metrics = evaluate_run("runs/b0", split="test")
    proba = load_run("runs/b0").predict_proba(["scan.png"])
"""

from .config import RunConfig, build_config
from .data import load_dataset
from .models import create_model, list_models
from .runs import cross_validate, ensemble_runs, evaluate_run, load_run, resume, train

__version__ = "0.1.0"

__all__ = ["RunConfig", "build_config", "load_dataset", "create_model", "list_models", "train", "resume",
           "evaluate_run", "load_run", "cross_validate", "ensemble_runs", "__version__"]

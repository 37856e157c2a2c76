"""Run folders and the workflows that fill them: train, resume, evaluate, predict, cross-validate, ensemble."""

from ..run_folder import RunFolder
from .crossval import cross_validate
from .diagnostics import lr_range_test, sanity_check
from .ensemble import ensemble_runs
from .evaluate import evaluate_run
from .predict import TrainedModel, load_run
from .train import resume, train

__all__ = ["RunFolder", "TrainedModel", "cross_validate", "ensemble_runs", "evaluate_run", "load_run", "lr_range_test",
           "resume", "sanity_check", "train"]

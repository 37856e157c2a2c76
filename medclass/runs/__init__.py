"""Run folders and the workflows that fill them: train, resume, evaluate, predict."""

from .diagnostics import lr_range_test, sanity_check
from .evaluate import evaluate_run
from .folder import RunFolder
from .predict import TrainedModel, load_run
from .train import resume, train

__all__ = ["RunFolder", "TrainedModel", "evaluate_run", "load_run", "lr_range_test", "resume", "sanity_check", "train"]

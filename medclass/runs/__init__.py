"""Run folders and the workflows that fill them: train, resume, evaluate, predict."""

from .evaluate import evaluate_run
from .folder import RunFolder
from .predict import TrainedModel, load_run
from .train import resume, train

__all__ = ["RunFolder", "train", "resume", "evaluate_run", "load_run", "TrainedModel"]

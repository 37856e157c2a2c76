"""The training loop and what plugs into it: callbacks, optimisers, schedules, checkpoints, seeds."""

from .callbacks import BestCheckpoint, Callback, EarlyStopping
from .checkpoint import load_state, load_weights, save_state, save_weights
from .inference import predict_proba
from .loop import Trainer
from .optim import build_optimizer, build_scheduler
from .seeding import derive_seed, epoch_generator, seed_everything

__all__ = ["Trainer", "Callback", "EarlyStopping", "BestCheckpoint", "predict_proba", "build_optimizer",
           "build_scheduler", "save_weights", "load_weights", "save_state", "load_state", "seed_everything",
           "derive_seed", "epoch_generator"]

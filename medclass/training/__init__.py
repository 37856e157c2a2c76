"""The training loop and what plugs into it: losses, optimisers, schedules, callbacks, checkpoints, seeds,
and two debugging aids: the overfit-a-batch sanity check and the learning-rate range test."""

from .callbacks import BestCheckpoint, Callback, EarlyStopping
from .checkpoint import load_state, load_weights, save_state, save_weights
from .inference import predict_proba
from .loop import Trainer, TrainStep, amp_enabled
from .losses import build_loss
from .lr_finder import LRRangeResult, find_lr, plot_lr_range
from .optim import build_optimizer, build_scheduler, is_epoch_scheduler
from .sanity import SanityResult, overfit_batches
from .seeding import derive_seed, epoch_generator, seed_everything

__all__ = ["Trainer", "TrainStep", "amp_enabled", "Callback", "EarlyStopping", "BestCheckpoint", "predict_proba",
           "build_loss", "build_optimizer", "build_scheduler", "is_epoch_scheduler", "find_lr", "LRRangeResult",
           "plot_lr_range", "overfit_batches", "SanityResult", "save_weights", "load_weights", "save_state",
           "load_state", "seed_everything", "derive_seed", "epoch_generator"]

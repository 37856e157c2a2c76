"""The training loop and what plugs into it: losses, optimisers, schedules, callbacks, resume state, seeds,
and two debugging aids: the overfit-a-batch sanity check and the learning-rate range test."""

from .callbacks import BestCheckpoint, Callback, EarlyStopping
from .inference import predict_proba
from .loop import Trainer, TrainStep, amp_enabled
from .losses import build_loss
from .lr_finder import LRRangeResult, find_lr, plot_lr_range
from .optim import build_optimizer, build_scheduler, is_epoch_scheduler
from .sanity import SanityResult, overfit_batches
from .seeding import derive_seed, epoch_generator, seed_everything
from .state import load_state, save_state

__all__ = ["Trainer", "TrainStep", "amp_enabled", "Callback", "EarlyStopping", "BestCheckpoint", "predict_proba",
           "build_loss", "build_optimizer", "build_scheduler", "is_epoch_scheduler", "find_lr", "LRRangeResult",
           "plot_lr_range", "overfit_batches", "SanityResult", "save_state",
           "load_state", "seed_everything", "derive_seed", "epoch_generator"]

"""Time budgets for ``medclass auto``: a clock, a timing probe, and the plan that divides the budget.

The budget covers everything ``auto`` does after it is called: loading the data, the probe, screening, the
K-fold ranking, the final training, the ensemble and the one scoring of the test split. It is planned once
from a probe and re-planned as trials report their measured time per epoch:

1. **Probe** (:func:`probe`): build the base configuration's trainer exactly as training does, time two
   optimisation steps after two warm-up ones, a forward pass of one validation batch and the files an epoch
   writes (two weights files and the resume state), and extrapolate one epoch. Start-up and the final
   validation scoring of a run are ``overhead``; scoring the test split is estimated from the inference time per image.
2. **Reserve the end** (``end_seconds``): scoring test once, the inference of two more ensemble members on
   val and test, and a margin of 2% of the budget (at least 2 s).
3. **Final training** (``final_epochs``): the base recipe's epochs, but at most what fits in
   ``FINAL_SHARE`` of the budget; all the rest when nothing can be screened. This is a reservation: when the
   final training starts, it may use whatever earlier phases left (up to the recipe's epochs).
4. **K-fold ranking** (only when the validation split is small): up to ``CV_SHARE`` of the budget.
5. **Screening** gets what is left. Rungs grow by ``ETA`` = 3: three rungs (r, 3r, 9r epochs) when the
   final training has at least 9 epochs, two when it has 3 to 8, one below. The rung unit r is the
   largest (up to final_epochs / 9) whose expected cost fits: with n candidates, successive halving trains
   about ``n r (1 + (rungs - 1) (ETA - 1) / ETA)`` epochs, plus one trial run to the end (with one worker
   the first trials are always promoted) and n start-ups.

The minimum budget is what one epoch of the base configuration, a run's overhead, the end reserve and the
time already spent add up to; a smaller budget is refused with that number.
"""

from __future__ import annotations

import itertools
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..errors import ConfigError
from ..models import save_weights
from ..training import Callback, epoch_generator, save_state
from .train import _threads, prepare_training

__all__ = ["Clock", "Probe", "Plan", "BudgetStop", "Deadline", "probe", "plan_budget", "final_epochs_for", "ETA",
           "FINAL_SHARE", "CV_SHARE"]

log = logging.getLogger(__name__)

ETA = 3  # successive halving's reduction factor: a third of the trials reaching a rung go on to the next
FINAL_SHARE = 0.35  # the final training gets at most this share of the budget (unless nothing can be screened)
CV_SHARE = 0.4  # K-fold ranking of the finalists (small validation splits only)
END_MARGIN = 0.02  # of the budget, at least END_MIN seconds: ensemble inference, files, scheduling noise
END_MIN = 2.0
ENSEMBLE_MEMBERS = 3  # the end reserve has room to score this many members


class BudgetStop(Exception):
    """Stops a run the budget cannot afford (raised from a training callback; the caller records why)."""


class Clock:
    """Seconds since the start of ``auto`` and what is left of the budget."""

    def __init__(self, budget_s: float):
        self.budget = float(budget_s)
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.budget - self.elapsed()


@dataclass(frozen=True)
class Probe:
    """Measured costs of the base configuration on this machine (seconds)."""

    epoch_seconds: float  # one epoch: training steps and validation
    step_seconds: float  # one optimisation step of batch_size images
    overhead: float  # start-up of a run (data, model) plus its final validation scoring
    test_seconds: float  # scoring the test split once (start-up, inference and the bootstrap)
    inference_per_image: float
    n_train: int
    n_val: int
    n_test: int
    batches: int  # optimisation steps per epoch
    task: str
    monitor: str
    seconds: float  # what the probe itself took


def probe(cfg: RunConfig) -> Probe:
    """Time the base configuration: two warm-up steps, two timed ones, one validation batch; see the module."""
    with _threads(cfg.train.num_threads):  # as training will run
        return _probe(cfg)


def _probe(cfg: RunConfig) -> Probe:
    t0 = time.perf_counter()
    setup = prepare_training(cfg, None)
    setup_s = time.perf_counter() - t0
    trainer = setup.trainer
    batches = list(itertools.islice(trainer.train_loader.batches(epoch_generator(cfg.seed, 0)), 2))
    times = []
    trainer.model.train()
    for x, y in batches * 2:  # the first pass warms up (kernel selection, allocations), the second is timed
        t = time.perf_counter()
        trainer.train_step.update(trainer.train_step.loss(x, y))
        times.append(time.perf_counter() - t)
    step = sum(times[len(batches):]) / len(batches)
    full = max(len(y) for _, y in batches)
    step *= cfg.train.batch_size / full  # a dataset smaller than one batch
    x, _ = next(iter(trainer.val_loader.batches()))
    trainer.model.eval()
    with torch.no_grad():
        trainer.model(x)
        t = time.perf_counter()
        trainer.model(x)
    per_image = (time.perf_counter() - t) / len(x)
    with tempfile.TemporaryDirectory() as tmp:  # what every epoch writes: best and last weights, resume state
        t = time.perf_counter()
        save_weights(Path(tmp) / "best.safetensors", trainer.eval_model.state_dict(), setup.meta)
        save_weights(Path(tmp) / "last.safetensors", trainer.eval_model.state_dict(), setup.meta)
        save_state(Path(tmp) / "last_state.pt", trainer.state_dict())
        writes = time.perf_counter() - t
    ds = setup.dataset
    n_train, n_val = len(ds.split("train")), len(ds.split("val"))
    n_test = len(ds.splits["test"]) if "test" in ds.splits else n_val
    epoch = step * len(trainer.train_loader) + per_image * n_val + writes
    return Probe(epoch_seconds=epoch, step_seconds=step, overhead=setup_s + per_image * n_val + 0.5,
                 test_seconds=setup_s + per_image * n_test + 1.0, inference_per_image=per_image,
                 n_train=n_train, n_val=n_val, n_test=n_test,
                 batches=len(trainer.train_loader), task=ds.task, monitor=trainer.task.monitor,
                 seconds=time.perf_counter() - t0)


@dataclass(frozen=True)
class Plan:
    """How the budget is divided (seconds), and the rungs of successive halving (epochs)."""

    budget: float
    spent_before: float  # data loading and the probe
    end_seconds: float
    final_epochs: int
    final_seconds: float
    cv_seconds: float
    screen_seconds: float
    rung_unit: int  # r: the first rung, in epochs
    rungs: tuple[int, ...]  # r, r*ETA, ...: the last one is the screening length
    minimum: float  # the smallest budget that trains anything

    @property
    def max_epochs(self) -> int:
        return self.rungs[-1] if self.rungs else 0

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 2) if isinstance(v, float) else list(v) if isinstance(v, tuple) else v
                for k, v in asdict(self).items()}


def final_epochs_for(epoch_seconds: float, overhead: float, budget: float, recipe_epochs: int) -> int:
    """The final training's epochs for a model of this speed: the recipe's, at most ``FINAL_SHARE`` of the budget."""
    return max(1, min(recipe_epochs, math.floor((FINAL_SHARE * budget - overhead) / max(epoch_seconds, 1e-6))))


def plan_budget(p: Probe, budget: float, spent: float, recipe_epochs: int, n_candidates: int, small_val: bool,
                folds: int, dataset: str) -> Plan:
    """Divide ``budget`` (see the module); a :class:`ConfigError` naming the minimum when nothing fits."""
    s, o = p.epoch_seconds, p.overhead
    members = (ENSEMBLE_MEMBERS - 1) * p.inference_per_image * (p.n_val + p.n_test)  # an ensemble's other members
    end = p.test_seconds + members + max(END_MIN, END_MARGIN * budget)
    minimum = spent + end + o + s
    if budget < minimum:
        need = math.ceil(minimum * 1.1)
        screen = math.ceil(minimum + 2 * (o + s) * max(n_candidates, 2))
        raise ConfigError(
            f"A budget of {budget:g}s is too small to train anything on {dataset} here: one epoch of the base "
            f"configuration takes about {s:.1f}s, starting and scoring a run about {o:.1f}s, scoring the test split "
            f"with a safety margin about {end:.1f}s, and {spent:.1f}s went on loading the data and timing it. "
            f"Pass --budget {need}s or "
            f"more (screening the {n_candidates} candidates needs roughly {screen}s).")
    left = budget - spent - end
    final_epochs = min(final_epochs_for(s, o, budget, recipe_epochs), max(1, math.floor((left - o) / s)))
    final = final_epochs * s + o
    cv = CV_SHARE * budget if small_val and folds else 0.0
    screen = left - final - cv
    if screen < 2 * (o + s):  # not even two candidates for one epoch: train the base configuration with it all
        final_epochs = max(1, min(recipe_epochs, math.floor((left - o) / s)))
        return Plan(budget, spent, end, final_epochs, final_epochs * s + o, 0.0, 0.0, 0, (), minimum)
    levels = 3 if final_epochs >= ETA ** 2 else 2 if final_epochs >= ETA else 1
    r_max = max(1, final_epochs // ETA ** (levels - 1))
    per = 1 + (levels - 1) * (ETA - 1) / ETA

    def cost(r: int) -> float:
        return n_candidates * (o + r * s * per) + r * ETA ** (levels - 1) * s

    r = next((r for r in range(r_max, 0, -1) if cost(r) <= screen), 1)
    rungs = tuple(r * ETA ** k for k in range(levels))
    return Plan(budget, spent, end, final_epochs, final, cv, screen, r, rungs, minimum)


class Deadline(Callback):
    """Stop a run whose next epoch would end after ``deadline()`` (elapsed seconds): raise, or with ``soft``
    finish it at this epoch (the run stays complete with fewer epochs)."""

    def __init__(self, clock: Clock, deadline: Callable[[], float], soft: bool = False):
        self.clock, self.deadline, self.soft = clock, deadline, soft
        self.seconds: list[float] = []
        self.t = 0.0

    def on_fit_start(self, trainer):
        self.t = time.perf_counter()

    def on_epoch_end(self, trainer, record):
        now = time.perf_counter()
        self.seconds.append(now - self.t)
        self.t = now
        if trainer.epoch < trainer.epochs and self.clock.elapsed() + max(self.seconds[-3:]) > self.deadline():
            # the slowest of the last three epochs: one slow epoch (a busy machine) should not overrun the budget
            if not self.soft:
                raise BudgetStop(f"budget: stopped after epoch {trainer.epoch}")
            log.warning("stopping after epoch %d of %d to stay within the budget", trainer.epoch, trainer.epochs)
            trainer.should_stop = True

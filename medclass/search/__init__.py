"""Hyperparameter search with Optuna, chosen on the validation split only: the function behind ``medclass search``.

Design:

* **The search space is the menu.** :data:`DEFAULT_SPACE` maps a dotted config key (``train.lr``) to a
  distribution; every sampled value becomes a config override applied to the base configuration through the
  same dict round trip as ``--set`` (:func:`medclass.config.build_config`), so a sampled combination is
  validated exactly like a hand-written one. One key is not a config key: ``augment_strength`` (a number *s*
  in [0, 1]) scales every continuous augmentation at once, ``s * AUGMENT_AT_FULL_STRENGTH``: rotate 15*s
  degrees, scale, translate, brightness and contrast 0.1*s each (one knob, because five separate ones
  need many more trials to learn anything).
* **Validation only.** Each trial is an ordinary run trained by :func:`medclass.runs.train` into
  ``out_dir/trials/<number>``; its objective is that run's best validation AUC (``status.json``
  ``best_val_auc``). :func:`~medclass.runs.train` never loads the test split, so the search cannot peek.
  Every trial uses the base configuration's seed, so trials differ only in their hyperparameters.
* **Storage.** Trials live in an Optuna storage: ``sqlite:///<out_dir>/study.db`` unless a URL is given.
  ``workers=N`` starts N worker *processes* ("spawn" context: no GIL contention, no forked torch state)
  that share the storage, each running its share of the trials with ``max(1, cpu_count // N)`` torch
  threads. Several machines join one search by passing the same storage URL (PostgreSQL or MySQL; SQLite
  only on one machine) and the same ``study_name``; each machine keeps its own trial folders. Re-running
  with the same storage and name adds trials to the existing study.
* **Sampler.** TPE (``optuna.samplers.TPESampler``) seeded with ``seed + worker index``: workers with the
  same seed would propose identical start-up trials. With several workers the order in which trials finish
  varies, so a parallel search is not bit-reproducible; each trial, however, is (see below).
* **The result.** ``out_dir/best.yaml`` is the complete resolved configuration of the best trial (stored
  with the trial, so it is available whichever machine ran it): ``medclass train --config best.yaml``
  trains that trial again. Training is deterministic on CPU for a fixed seed *and* thread count; workers
  set the thread count outside the config (so best.yaml stays portable), and the count a trial ran with is
  in ``trials.csv`` (``threads``) for a bit-exact re-run (``--set train.num_threads=N``).
  ``out_dir/trials.csv`` lists every trial (number, state, value, seconds, threads, one column per
  parameter).

Not done yet: pruning (stopping poor trials early with Optuna's MedianPruner). It needs a training callback
that reports ``val_auc`` each epoch and raises ``optuna.TrialPruned``, and a run folder marked as pruned so a
half-trained run is never mistaken for a finished one; every trial currently trains all its epochs.
"""

from __future__ import annotations

from .space import AUGMENT_AT_FULL_STRENGTH, DEFAULT_SPACE, Categorical, Float, trial_config, trial_overrides
from .study import OPTUNA_HINT, SearchResult, search

__all__ = ["Float", "Categorical", "DEFAULT_SPACE", "AUGMENT_AT_FULL_STRENGTH", "SearchResult", "search",
           "trial_overrides", "trial_config", "OPTUNA_HINT"]

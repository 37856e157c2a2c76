"""Running the study: worker processes sharing one Optuna storage, then best.yaml and trials.csv.

See :mod:`medclass.search` for the design.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig, build_config, config_to_dict
from ..data.build import build_dataset
from ..errors import ConfigError, MedclassError
from ..runs.train import train
from ..utils.io import atomic_write_text, atomic_write_yaml
from .space import DEFAULT_SPACE, Categorical, Float, _check_space, _example, trial_config

log = logging.getLogger(__name__)

__all__ = ["SearchResult", "search", "OPTUNA_HINT"]

OPTUNA_HINT = 'pip install "medclass[search]"'
DEFAULT_STUDY_NAME = "medclass-search"

@dataclass
class SearchResult:
    """What :func:`search` found. ``trials`` holds one row per trial of the study, as in ``trials.csv``."""

    out_dir: Path
    storage: str
    study_name: str
    best_number: int
    best_value: float
    best_params: dict[str, Any]
    best_config: RunConfig
    best_config_path: Path
    trials_csv: Path
    trials: list[dict[str, Any]] = field(default_factory=list)


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"medclass search needs Optuna, which is not installed. Install it with: "
                          f"{OPTUNA_HINT}") from None
    return optuna


def _storage(optuna: Any, url: str) -> Any:
    """An Optuna RDB storage for ``url``; a ConfigError that says what to pass when it cannot be opened."""
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}  # parallel SQLite writers wait
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as e:  # sqlalchemy URL, driver and connection errors all land here
        shown = _redact(url)
        raise ConfigError(f"Cannot open the search storage {shown!r}: {type(e).__name__}: {str(e).rstrip('.')}. "
                          f"Pass a database URL to --storage, e.g. sqlite:///runs/search/study.db or "
                          f"postgresql://user:password@host/dbname (several machines).") from None


def _redact(url: str) -> str:
    """A database URL with its password hidden (``postgresql://user:***@host/db``), for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _worker(base: RunConfig, out_dir: str, storage_url: str, study_name: str, n_trials: int, space: Mapping,
            seed: int, threads: int, timeout: float | None, verbose: bool) -> None:
    """One worker: run ``n_trials`` trials of the shared study (in this process or a spawned one)."""
    optuna = _import_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not base.train.num_threads:
        torch.set_num_threads(threads)
    n_threads = torch.get_num_threads()
    study = optuna.load_study(study_name=study_name, storage=_storage(optuna, storage_url),
                              sampler=optuna.samplers.TPESampler(seed=seed))

    def objective(trial: Any) -> float:
        params = {name: dist.suggest(trial, name) for name, dist in space.items()}
        cfg = trial_config(base, params)
        trial.set_user_attr("config", config_to_dict(cfg))
        trial.set_user_attr("threads", n_threads)
        trial.set_user_attr("host", os.uname().nodename if hasattr(os, "uname") else "")
        folder = Path(out_dir) / "trials" / str(trial.number)
        trial.set_user_attr("folder", str(folder))
        t0 = time.perf_counter()
        run = train(cfg, folder)
        status = run.read_status()
        # the validation metric that chose the checkpoint (AUC; R^2 for regression): the only thing the search sees
        value = float(status[f"best_{status.get('monitor', 'val_auc')}"])
        seconds = time.perf_counter() - t0
        trial.set_user_attr("seconds", round(seconds, 3))
        if verbose:
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
            print(f"trial {trial.number}: val AUC {value:.4f} ({seconds:.1f}s)  {shown}", flush=True)
        return value

    # a diverged trial (non-finite loss) is recorded as failed and the search goes on; anything else stops it
    # DivergenceError is a FloatingPointError: a diverged trial fails, the study goes on
    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(FloatingPointError,))


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def search(base_cfg: RunConfig, out_dir: str | os.PathLike, *, n_trials: int, workers: int = 1,
           storage: str | None = None, study_name: str | None = None,
           space: Mapping[str, Float | Categorical] = DEFAULT_SPACE, seed: int = 0, timeout: float | None = None,
           verbose: bool = False, download_progress: Callable[[int, int], None] | None = None) -> SearchResult:
    """Search hyperparameters of ``base_cfg`` by validation AUC; write ``best.yaml`` and ``trials.csv``.

    Args:
        base_cfg: the configuration every trial starts from (data, model, epochs, seed...).
        out_dir: the search folder: ``trials/<number>/`` run folders, ``study.db``, ``best.yaml``, ``trials.csv``.
        n_trials: trials to run now (added to those already in the study), split across the workers.
        workers: worker processes on this machine sharing the storage; 1 runs in this process.
        storage: an SQLAlchemy database URL; unset: ``sqlite:///<out_dir>/study.db``.
        study_name: the study's name in the storage; machines sharing a storage and name share one search.
        space: dotted config key (or ``augment_strength``) to :class:`Float` / :class:`Categorical`.
        seed: seed of the TPE sampler (worker *i* uses ``seed + i``); the training seed is ``base_cfg.seed``.
        timeout: stop starting new trials after this many seconds (per worker).
        verbose: print one line per finished trial.
        download_progress: ``fn(done, total)`` while a missing MedMNIST file downloads.

    Raises:
        ConfigError (bad arguments, storage, missing Optuna), plus what :func:`medclass.runs.train` raises.
    """
    optuna = _import_optuna()
    if n_trials < 1:
        raise ConfigError(f"n_trials must be at least 1. Got {n_trials!r}; pass --trials N.")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1. Got {workers!r}; pass --workers N.")
    trial_config(base_cfg, {k: _example(d) for k, d in space.items()})  # unknown keys or bad ranges fail now
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"Search folder '{out}' exists and is a file. Choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    name = study_name or DEFAULT_STUDY_NAME
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # created here, once, so that workers only load it (concurrent creation races on a fresh database)
    study = optuna.create_study(study_name=name, storage=_storage(optuna, url), direction="maximize",
                                load_if_exists=True)
    _check_space(optuna, study, space)
    # load (and download) the data once before any worker starts, so workers don't race to fetch or cache it
    build_dataset(base_cfg.data, progress=download_progress)

    shares = [n_trials // workers + (i < n_trials % workers) for i in range(workers)]
    shares = [s for s in shares if s]
    threads = max(1, (os.cpu_count() or 1) // len(shares))
    jobs = [(base_cfg, str(out), url, name, s, dict(space), seed + i, threads, timeout, verbose)
            for i, s in enumerate(shares)]
    if len(jobs) == 1:
        before = torch.get_num_threads()
        try:
            _worker(*jobs[0])
        finally:
            torch.set_num_threads(before)
    else:
        with ProcessPoolExecutor(max_workers=len(jobs), mp_context=get_context("spawn")) as pool:
            for f in [pool.submit(_worker, *job) for job in jobs]:
                f.result()  # re-raises a worker's error here
    return _summarise(optuna, out, url, name)


def _summarise(optuna: Any, out: Path, url: str, name: str) -> SearchResult:
    study = optuna.load_study(study_name=name, storage=_storage(optuna, url))
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
            and math.isfinite(t.value)]
    rows = [_row(t) for t in trials]
    param_names = sorted({k for t in trials for k in t.params})
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["number", "state", "value", "seconds", "threads", *param_names, "folder"],
                       extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows({**r, **r["params"]} for r in rows)
    trials_csv = atomic_write_text(out / "trials.csv", buf.getvalue())
    if not done:
        failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
        raise MedclassError(f"No trial of study {name!r} completed ({len(failed)} failed); see {trials_csv} and the "
                            f"run folders under {out / 'trials'}.")
    best = max(done, key=lambda t: (t.value, -t.number))  # ties: the earliest trial
    cfg_dict = best.user_attrs["config"]
    best_cfg = build_config(overrides=cfg_dict)
    best_path = atomic_write_yaml(out / "best.yaml", config_to_dict(best_cfg))
    return SearchResult(out, url, name, best.number, float(best.value), dict(best.params), best_cfg, best_path,
                        trials_csv, rows)


def _row(t: Any) -> dict[str, Any]:
    folder = t.user_attrs.get("folder", "")
    seconds = t.user_attrs.get("seconds")
    if seconds is None and t.datetime_start and t.datetime_complete:
        seconds = round((t.datetime_complete - t.datetime_start).total_seconds(), 3)
    return {"number": t.number, "state": t.state.name, "value": t.value, "seconds": seconds,
            "threads": t.user_attrs.get("threads"), "params": dict(t.params), "folder": folder}

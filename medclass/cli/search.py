"""``medclass search``: hyperparameter search with Optuna, chosen on validation AUC; writes best.yaml."""

from __future__ import annotations

import argparse
import math
from typing import Any

from .options import config_from_args, config_parent

__all__ = ["add_parser"]

_EPILOG = """\
search space: train.lr log-uniform [1e-4, 1e-1]; train.batch_size 32, 64, 128 or 256; train.optimizer sgd, adam
or adamw; train.weight_decay log-uniform [1e-6, 1e-2]; model.dropout uniform [0, 0.5]; augmentation strength s
uniform [0, 1], giving train.augment rotate=15*s, scale, translate, brightness and contrast = 0.1*s. Every other
setting comes from --config/--set and is the same in every trial.

Each trial is a run folder OUT/trials/<number>, scored by its best validation AUC; the test split is never
loaded. Several machines: give each the same --storage URL (e.g. postgresql://user:pass@host/db) and
--study-name, and its own --out. Running again with the same storage and name adds trials to the study.
Afterwards: medclass train --config OUT/best.yaml --out runs/best  (then medclass evaluate ... --split test)."""


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("search", help="hyperparameter search (Optuna) on validation AUC; writes best.yaml",
                       parents=[parent, config_parent()],
                       description="Search learning rate, batch size, optimiser, weight decay, dropout and "
                                   "augmentation strength with Optuna's TPE sampler, each trial a full training "
                                   "run judged by its best validation AUC. Settings resolve as for `medclass "
                                   "train`; the searched ones are replaced in each trial.",
                       epilog=_EPILOG, formatter_class=_Formatter)
    p.add_argument("--quiet", action="store_true", help="no per-trial lines")
    p.add_argument("--trials", type=int, default=20, help="trials to run now (split across the workers)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine sharing the storage")
    p.add_argument("--storage", metavar="URL", help="Optuna database URL (default: sqlite:///OUT/study.db); "
                                                    "share one across machines")
    p.add_argument("--study-name", default="medclass-search", help="study name inside the storage")
    p.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (the training seed is --seed)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--out", metavar="DIR", required=True, help="search folder (trials/, best.yaml, trials.csv)")
    p.set_defaults(run=run)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def run(args: argparse.Namespace) -> int:
    from ..search import DEFAULT_SPACE, search  # the workflow loads PyTorch: imported when the command runs
    from .progress import DownloadProgress

    cfg = config_from_args(args)
    given = {item.split("=", 1)[0].strip() for item in args.set}
    given |= {k for k, flag in (("train.lr", args.lr), ("train.batch_size", args.batch_size)) if flag is not None}
    searched = sorted(given & set(DEFAULT_SPACE))
    if searched:
        print(f"note: {', '.join(searched)} are searched: the values given are replaced in each trial")
    args.interrupt_hint = (f"Finished trials are kept; run the same command again to add more (storage "
                           f"{args.storage or args.out + '/study.db'}).")
    r = search(cfg, args.out, n_trials=args.trials, workers=args.workers, storage=args.storage,
               study_name=args.study_name, seed=args.sampler_seed, timeout=args.timeout, verbose=not args.quiet,
               download_progress=DownloadProgress(enabled=not args.quiet))
    print(trials_table(r))
    print(f"best: trial {r.best_number}, val AUC {r.best_value:.4f}  -> {r.best_config_path}")
    print(f"next: medclass train --config {r.best_config_path} --out runs/best")
    return 0


def trials_table(r: Any) -> str:
    """One aligned line per trial of a :class:`~medclass.search.SearchResult`, best marked with ``*``."""
    names = list(dict.fromkeys(k for row in r.trials for k in row["params"]))
    short = [n.split(".")[-1].replace("augment_strength", "augment") for n in names]
    head = ["", "trial", "state", "val AUC", "s", *short]
    rows = []
    for row in r.trials:
        v = row["value"]
        cells = ["*" if row["number"] == r.best_number else "", str(row["number"]), row["state"].lower(),
                 "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}",
                 "" if row["seconds"] is None else f"{row['seconds']:.1f}"]
        cells += [_cell(row["params"].get(n)) for n in names]
        rows.append(cells)
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *rows])


def _cell(v: object) -> str:
    if v is None:
        return ""
    return f"{v:.3g}" if isinstance(v, float) else str(v)

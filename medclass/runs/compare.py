"""Compare two finished runs on the same split: ``medclass compare runs/a runs/b --split test``.

Both runs must have scored the same examples (same dataset and split, so the same labels in the same
order). Differences (a - b) come with paired bootstrap intervals (both runs scored on the same resampled
examples in each replicate) and, for binary tasks, DeLong's test of the two AUCs.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, RunFolderError
from ..evaluation.assess import AssessConfig, weighted_metric_functions
from ..evaluation.bootstrap import percentile_interval, resample_counts
from ..evaluation.compare import delong_test
from ..evaluation.kinds import get_kind
from ..run_folder import RunFolder, read_predictions
from ..utils.io import read_json

__all__ = ["compare_runs", "compare_predictions"]

METRICS = ("auc", "acc", "sensitivity", "specificity", "ppv", "npv", "f1", "quadratic_weighted_kappa",
           "mae", "rmse", "r2", "pearson_r")


def compare_predictions(y: np.ndarray, proba_a: np.ndarray, proba_b: np.ndarray, task: str,
                        positive_label: int | None = None, groups: np.ndarray | None = None,
                        cfg: AssessConfig = AssessConfig()) -> dict[str, Any]:
    """Paired bootstrap differences (a - b) of the headline metrics, and DeLong's test for binary AUC."""
    kind = get_kind(task)
    if kind.multihead:
        raise ConfigError("Paired comparison covers single-head tasks; compare a multi-task model's heads by "
                          "evaluating each run and reading metrics['heads'].")
    pos = 1 if positive_label is None else int(positive_label)
    fa = weighted_metric_functions(y, proba_a, task, pos, cfg.threshold)
    fb = weighted_metric_functions(y, proba_b, task, pos, cfg.threshold)
    keys = [k for k in METRICS if k in fa and k in fb]
    rng = np.random.default_rng(cfg.seed)
    reps: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for w in resample_counts(len(y), cfg.n_boot, rng, groups):
        for k in keys:
            reps[k].append(fa[k](w) - fb[k](w))
    ones = np.ones((1, len(y)))
    out: dict[str, Any] = {"difference": {}}
    for k in keys:
        d = np.concatenate(reps[k])
        lo, hi = percentile_interval(d, cfg.level)
        finite = d[np.isfinite(d)]
        out["difference"][k] = {"a": float(fa[k](ones)[0]), "b": float(fb[k](ones)[0]),
                                "estimate": float(fa[k](ones)[0] - fb[k](ones)[0]), "low": lo, "high": hi,
                                "share_a_better": float(np.mean(finite > 0)) if finite.size else float("nan"),
                                "n_undefined": int(np.sum(~np.isfinite(d))),
                                "undefined_share": float(np.mean(~np.isfinite(d))) if d.size else 0.0}
    if kind.has_positive_class:
        out["delong"] = delong_test(y == pos, proba_a[:, pos], proba_b[:, pos])
    out["bootstrap"] = {"replicates": cfg.n_boot, "level": cfg.level, "seed": cfg.seed, "paired": True,
                        "unit": "patient" if groups is not None else "image"}
    return out


def compare_runs(run_a: str | os.PathLike, run_b: str | os.PathLike, split: str = "test",
                 cfg: AssessConfig = AssessConfig()) -> dict[str, Any]:
    """Compare the saved ``predictions/<split>.csv`` of two complete runs (score them first with evaluate)."""
    folders = [RunFolder(r).require_complete() for r in (run_a, run_b)]
    for f in folders:
        if not f.predictions(split).is_file():
            raise RunFolderError(f"Run '{f.path}' has no {split} predictions yet. Score it first: "
                                 f"medclass evaluate {f.path} --split {split}")
    cards = [read_json(f.dataset_card) for f in folders]
    values = get_kind(cards[0]["task"]).values
    (ya, pa, _), (yb, pb, _) = (read_predictions(f.predictions(split), values=values) for f in folders)
    if cards[0]["name"] != cards[1]["name"] or ya.shape != yb.shape or not np.array_equal(ya, yb):
        raise DataError(f"Runs '{folders[0].path}' ({cards[0]['name']}, n={len(ya)}) and '{folders[1].path}' "
                        f"({cards[1]['name']}, n={len(yb)}) did not score the same examples; a paired comparison "
                        f"needs the same dataset and split.")
    result = compare_predictions(ya, pa, pb, cards[0]["task"], cards[0].get("positive_label"), cfg=cfg)
    return {"a": str(folders[0].path), "b": str(folders[1].path), "dataset": cards[0]["name"], "split": split,
            "n": int(len(ya)), **result}

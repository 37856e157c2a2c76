"""The leaderboard of ``medclass auto``: one row per candidate, written as ``leaderboard.json`` and ``.csv``.

A row holds the candidate's name, group, one-line note and settings (dotted config keys), its state (``complete``,
``pruned``, ``failed``, ``skipped`` or ``not run``) and why, the validation value at each rung it reached
(``rungs``, by epoch) and every epoch (``history``), its final validation score (the kept checkpoint's for a
complete candidate, the last value for a pruned one), the K-fold cross-validation score where one was made, the
epochs and seconds it used and its measured seconds per epoch, and its trial folder.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from .portfolio import Candidate

__all__ = ["candidate_row", "leaderboard_csv", "metric_name"]


def metric_name(monitor: str) -> str:
    """``val_auc`` -> ``AUC``, ``val_r2`` -> ``R2``: the monitor as a reader names it."""
    return monitor.removeprefix("val_").upper()


def candidate_row(c: Candidate) -> dict[str, Any]:
    """A candidate's leaderboard row before it runs."""
    return {"candidate": c.name, "group": c.group, "note": c.note, "settings": c.settings(), "state": "not run",
            "reason": "", "trial": None, "rungs": {}, "history": [], "val_score": None, "cv_score": None,
            "cv_sd": None, "cv_state": None, "epochs": 0, "seconds": 0.0, "epoch_seconds": None, "folder": None}


def leaderboard_csv(rows: list[dict[str, Any]], rungs: Sequence[int]) -> str:
    """The rows as CSV: one column per rung (``val@<epochs>``), settings as ``key=value; ...``."""
    cols = ["rank", "candidate", "group", "state", "reason", *[f"val@{r}" for r in rungs], "val_score", "cv_score",
            "cv_sd", "epochs", "seconds", "epoch_seconds", "trial", "folder", "settings"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        cells = {**r, **{f"val@{k}": v for k, v in r["rungs"].items()}}
        cells["settings"] = "; ".join(f"{k}={v}" for k, v in r["settings"].items())
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else "" if v is None else v)
                    for k, v in cells.items() if k in cols})
    return buf.getvalue()

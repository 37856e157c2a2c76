"""Which epoch to keep: replay checkpoint-selection rules on finished runs' validation histories.

A script, not a test. Every run's ``history.csv`` holds each epoch's validation AUC and accuracy (MedMNIST's
definitions, threshold 0.5), so the rules can be compared after the fact without training anything, and
without the test split: only validation columns are read. Rules:

- ``highest``: the first epoch with the highest validation AUC (the MedMNIST rule; ``checkpoint_tolerance=0``);
- ``tolerance k``: the latest epoch whose AUC is within ``k`` Hanley-McNeil standard errors of the highest so
  far (``train.checkpoint_tolerance=k``; the same code path as training, :class:`BestCheckpoint`);
- ``last``: the final epoch.

The kept epoch's validation AUC and accuracy are averaged per dataset. They are measured on the split that
chose the epoch, so every rule is optimistic; ``highest`` most of all for AUC, which it maximises. Runs on
train+val (refits) are skipped: their validation split is training data. Binary tasks only (the class counts
come from the run's ``predictions/val.csv``).

Example::

    python benchmarks/checkpoint_rule.py benchmarks/runs/default-tol0 benchmarks/runs/ensembles \\
        --out benchmarks/results/checkpoint_rule.md
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import yaml

from medclass.evaluation.metrics import auc_standard_error
from medclass.training import BestCheckpoint

RULES = {"highest": 0.0, "tolerance 0.5": 0.5, "tolerance 1": 1.0, "tolerance 2": 2.0}


def replay(history: list[dict[str, float]], n_pos: int, n_neg: int, tolerance: float) -> dict[str, float]:
    """The epoch :class:`BestCheckpoint` keeps with this tolerance, given the epochs' validation AUCs."""
    cb = BestCheckpoint(lambda trainer, record: None, tolerance=tolerance)
    for r in history:
        cb.on_epoch_end(None, {**r, "val_auc_se": auc_standard_error(r["val_auc"], n_pos, n_neg)})
    return next(r for r in history if int(r["epoch"]) == cb.best_epoch)


def runs(roots: list[Path]):
    for root in roots:
        for hist in sorted(root.rglob("history.csv")):
            run = hist.parent
            status = json.loads((run / "status.json").read_text())
            preds = run / "predictions" / "val.csv"
            if status.get("state") != "complete" or status.get("refit") or not preds.is_file():
                continue
            with hist.open() as f:
                history = [{k: float(v) for k, v in r.items() if v} for r in csv.DictReader(f)]
            if "val_acc" not in history[0]:
                continue
            with preds.open() as f:
                y = np.array([int(r["y"]) for r in csv.DictReader(f)])
            if set(np.unique(y)) != {0, 1}:
                continue
            dataset = yaml.safe_load((run / "config.yaml").read_text())["data"]["dataset"]
            yield run, dataset, history, int((y == 1).sum()), int((y == 0).sum())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("roots", nargs="+", type=Path, help="folders searched for run folders")
    p.add_argument("--out", type=Path, help="write the markdown table here")
    args = p.parse_args(argv)

    kept: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    lines = ["| run | " + " | ".join(list(RULES) + ["last"]) + " |", "|---" * (len(RULES) + 2) + "|"]
    for run, dataset, history, n_pos, n_neg in runs(args.roots):
        cells = []
        for name, tol in [*RULES.items(), ("last", None)]:
            r = history[-1] if tol is None else replay(history, n_pos, n_neg, tol)
            kept.setdefault((dataset, name), []).append((r["val_auc"], r["val_acc"], int(r["epoch"])))
            cells.append(f"e{int(r['epoch'])} {r['val_auc']:.4f} / {r['val_acc']:.3f}")
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    if not kept:
        print("no finished binary runs with val_acc in their history under " + ", ".join(map(str, args.roots)),
              file=sys.stderr)
        return 1
    summary = ["| dataset | rule | runs | mean kept epoch | val AUC (mean) | val ACC (mean) | val ACC (min) |",
               "|---|---|---|---|---|---|---|"]
    for (dataset, name), v in sorted(kept.items(), key=lambda kv: (kv[0][0], [*RULES, "last"].index(kv[0][1]))):
        aucs, accs, epochs = zip(*v)
        summary.append(f"| {dataset} | {name} | {len(v)} | {statistics.mean(epochs):.1f} | "
                       f"{statistics.mean(aucs):.4f} | {statistics.mean(accs):.3f} | {min(accs):.3f} |")
    text = ("# Checkpoint rules replayed on validation histories\n\nEach cell: kept epoch, its validation AUC / "
            "validation ACC (threshold 0.5). Produced by `benchmarks/checkpoint_rule.py`; no test data is read.\n\n"
            + "\n".join(summary) + "\n\n## Per run\n\n" + "\n".join(lines) + "\n")
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

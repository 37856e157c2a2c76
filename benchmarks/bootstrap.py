"""Speed of medclass's vectorised bootstrap against a plain loop of ``sklearn.metrics.roc_auc_score``.

Both compute the same thing: the AUC of 10,000 bootstrap replicates of 10,000 (score, label) pairs. The
loop is timed on a subset of replicates and scaled (it is linear in the number of replicates); the
vectorised version runs all of them. Results are medians of repeated runs, written to
``benchmarks/results/bootstrap.md``.

    python benchmarks/bootstrap.py [--n 10000] [--replicates 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from medclass.evaluation.bootstrap import bootstrap, weighted_auc
from medclass.runs.environment import _cpu_name

HERE = Path(__file__).resolve().parent


def vectorised(y, s, n_boot: int, seed: int) -> float:
    t = time.perf_counter()
    bootstrap({"auc": lambda w: weighted_auc(y, s, w)}, len(y), n_boot=n_boot, seed=seed)
    return time.perf_counter() - t


def loop(y, s, n_boot: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        roc_auc_score(y[idx], s[idx])
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--replicates", type=int, default=10_000)
    p.add_argument("--loop-replicates", type=int, default=1000, help="replicates actually timed for the loop")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, a.n)
    s = rng.random(a.n) + 0.3 * y
    vec = [vectorised(y, s, a.replicates, r) for r in range(a.repeats)]
    lp = [loop(y, s, a.loop_replicates, r) * a.replicates / a.loop_replicates for r in range(a.repeats)]
    v, l_ = statistics.median(vec), statistics.median(lp)
    md = (f"# Bootstrap speed\n\n{a.replicates:,} replicates of ROC AUC on {a.n:,} samples, {_cpu_name()}, "
          f"median of {a.repeats} runs.\n\n| method | seconds |\n|---|---|\n"
          f"| medclass vectorised (`evaluation/bootstrap.py`) | {v:.2f} |\n"
          f"| loop of `sklearn.metrics.roc_auc_score` (timed on {a.loop_replicates:,}, scaled) | {l_:.1f} |\n\n"
          f"Speed-up: **{l_ / v:.0f}x**. Runs: vectorised {', '.join(f'{x:.2f}' for x in vec)} s; "
          f"loop {', '.join(f'{x:.1f}' for x in lp)} s.\n")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bootstrap.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()

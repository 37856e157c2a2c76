"""``medclass evaluate``: score a finished run on a split with its validation-chosen checkpoint."""

from __future__ import annotations

import argparse

from ..runs import evaluate_run
from .tables import metrics_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a run on a split (writes metrics/<split>.json)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to score")
    p.add_argument("--data-dir", metavar="DIR", help="where the dataset is on this machine")
    p.add_argument("--device", help="override the device (cpu, cuda)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    m = evaluate_run(args.run_dir, split=args.split, data_dir=args.data_dir, device=args.device)
    print(metrics_table(m))
    print(f"wrote {args.run_dir}/metrics/{args.split}.json and predictions/{args.split}.csv")
    return 0

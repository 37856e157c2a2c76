"""``medclass evaluate``: score a run on a split (or grade a predictions CSV from any tool)."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..evaluation.assess import AssessConfig
from ..evaluation.metrics import TASK_TYPES
from ..runs import evaluate_run
from ..runs.evaluate import evaluate_predictions
from ..utils.io import atomic_write_json
from .tables import metrics_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a run on a split (writes metrics/<split>.json), or a predictions CSV",
                       description="Score a finished run with its validation-chosen checkpoint, with 95%% bootstrap "
                                   "intervals and operating points chosen on validation. With --predictions, grade "
                                   "a CSV of predictions from any tool instead (columns y or y_0.., p_0, p_1, ...).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="?", help="a finished run folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to score")
    p.add_argument("--data-dir", metavar="DIR", help="where the dataset is on this machine")
    p.add_argument("--device", help="override the device (cpu, cuda)")
    g = p.add_argument_group("grading a predictions file")
    g.add_argument("--predictions", metavar="FILE.csv", help="CSV with y (or y_0, y_1, ...) and p_0, p_1, ... columns")
    g.add_argument("--task", choices=TASK_TYPES[:-1], default="binary", help="task of the predictions")
    g.add_argument("--val-predictions", metavar="FILE.csv", help="validation predictions: operating points are "
                                                                 "chosen there")
    g.add_argument("--labels", help="comma-separated class names, in column order")
    g.add_argument("--positive-label", type=int, help="binary: the class index called positive (default 1)")
    g.add_argument("--group-column", help="column with patient ids: intervals resample patients")
    g.add_argument("--subgroup-column", action="append", default=[], help="metadata column for subgroup results")
    g.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates")
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    g.add_argument("--out", metavar="FILE.json", help="where to write the evaluation (predictions mode)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.predictions:
        if args.run_dir:
            raise ConfigError("Give either RUN_DIR or --predictions FILE.csv, not both.")
        labels = tuple(s.strip() for s in args.labels.split(",")) if args.labels else None
        m = evaluate_predictions(args.predictions, args.task, labels, val_path=args.val_predictions,
                                 positive_label=args.positive_label, group_column=args.group_column,
                                 subgroup_columns=tuple(args.subgroup_column),
                                 cfg=AssessConfig(n_boot=args.n_boot, seed=args.seed))
        m["split"] = args.predictions
        print(metrics_table(m))
        if args.out:
            atomic_write_json(args.out, m)
            print(f"wrote {args.out}")
        return 0
    if not args.run_dir:
        raise ConfigError("medclass evaluate needs RUN_DIR (a run folder) or --predictions FILE.csv.")
    m = evaluate_run(args.run_dir, split=args.split, data_dir=args.data_dir, device=args.device)
    print(metrics_table(m))
    print(f"wrote {args.run_dir}/metrics/{args.split}.json and predictions/{args.split}.csv")
    return 0

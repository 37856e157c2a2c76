"""``medclass ensemble``: average the class probabilities of several runs (or a cross-validation's folds)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ensemble", help="average the probabilities of several runs (or the folds of `medclass cv`)",
                       parents=[parent],
                       description="Score a split with every run's validation-chosen checkpoint and average the "
                                   "class probabilities. The runs must share the dataset, labels and the images "
                                   "of the split. Operating points are chosen on the averaged validation "
                                   "predictions (one shared val split) or the out-of-fold ones (K-fold runs).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", metavar="RUN", nargs="+", help="run folders, or a `medclass cv` folder for its folds")
    p.add_argument("--split", default="test", choices=("val", "test"), help="split to score")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average each image with its left-right mirror (default: each run's eval.tta)")
    p.add_argument("--out", metavar="DIR", help="ensemble folder to write (ensemble.json, predictions, metrics)")
    p.add_argument("--data-dir", metavar="DIR", help="where the dataset is on this machine")
    p.add_argument("--device", help="override the device (cpu, cuda)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runs.ensemble import ensemble_runs  # the workflow loads PyTorch: imported when the command runs
    from .tables import metrics_table

    m = ensemble_runs(args.runs, split=args.split, tta=args.tta, out=args.out, data_dir=args.data_dir,
                      device=args.device)
    e = m["ensemble"]
    print(metrics_table(m))
    print(f"ensemble of {e['n_members']} runs (mean of class probabilities, tta: {e['tta']}); operating points "
          f"from: {e['operating_points_from']}")
    for i in e["members"]:
        print(f"  {i['run']}  (epoch {i['epoch']}, {i['model']}, {i['input_size']} px)")
    if args.out:
        print(f"wrote {args.out}/metrics/{args.split}.json, predictions/{args.split}.csv and ensemble.json")
    return 0

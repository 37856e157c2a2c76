"""``medclass ladder``: scratch, linear probe, last-k, fine-tuning and two SVM baselines on one dataset, one table."""

from __future__ import annotations

import argparse

from ..config import parse_overrides


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ladder", help="transfer-learning ladder: every way of reusing a source network, compared",
                       parents=[parent],
                       description="Train and score, on one target dataset: a HOG+LBP SVM, the network from scratch, "
                                   "an SVM on the source network's features, a linear probe, last-block and full "
                                   "fine-tuning of the source network. Every choice is made on validation; each "
                                   "rung is scored once on test with bootstrap 95%% intervals.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", required=True, help="target: MedMNIST name or a MedMNIST-layout .npz path")
    p.add_argument("--source", required=True,
                   help="source network: a medclass run folder, or a dataset to train one on first (OUT/source)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the rung runs, ladder.json and ladder.md")
    p.add_argument("--model", default="resnet18", help="architecture when the source is trained here")
    p.add_argument("--width", type=int, default=None, help="base channel width (default: the architecture's)")
    p.add_argument("--size", type=int, default=None, help="MedMNIST image size (28, 64, 128, 224); default 28")
    p.add_argument("--epochs", type=int, default=10, help="epochs of every network rung")
    p.add_argument("--source-epochs", type=int, default=None, help="epochs of the source (default: --epochs)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run and of the bootstrap")
    p.add_argument("--rungs", help="comma-separated rungs to run, in table order (default: all six: handcrafted, "
                                   "scratch, deep-svm, linear, last-k, finetune)")
    p.add_argument("--classifier", default="svm", choices=("svm", "logistic"), help="classifier of the feature rungs")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates of the 95%% intervals")
    p.add_argument("--data-dir", default=None, help="folder holding the .npz files (default: $MEDCLASS_DATA)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="config override for every run, e.g. train.batch_size=64 (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace runs left in --out by an earlier ladder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runs.ladder import format_table, run_ladder  # the workflow loads PyTorch: imported when the command runs

    rungs = tuple(r.strip() for r in args.rungs.split(",") if r.strip()) if args.rungs else None
    result = run_ladder(args.dataset, args.source, args.out, epochs=args.epochs, seed=args.seed,
                        data_dir=args.data_dir, model=args.model, width=args.width, size=args.size,
                        source_epochs=args.source_epochs, n_boot=args.n_boot, device=args.device, rungs=rungs,
                        classifier=args.classifier, overrides=parse_overrides(args.set), overwrite=args.overwrite)
    print(format_table(result))
    print(f"\nwrote {args.out}/ladder.json and {args.out}/ladder.md")
    return 0

"""``medclass cv``: K-fold cross-validation with train's options, then a refit on train+val."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from .options import config_from_args, config_parent
from .tables import simple_table


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("cv", help="K-fold cross-validation (patient-grouped when ids exist), then a refit on "
                                  "train+val", parents=[parent, config_parent()],
                       description="Train K folds of the non-test images into OUT/fold-0 .. fold-K-1 with the same "
                                   "settings (train's options), score the pooled out-of-fold predictions "
                                   "(OUT/cv.json, OUT/oof.csv), then refit on train+val for the median of the folds' "
                                   "best epochs (OUT/refit). Run it again to continue an interrupted "
                                   "cross-validation: completed folds are skipped. The test split is not used.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", metavar="DIR", help="cross-validation folder to create or continue")
    p.add_argument("--folds", type=int, default=5, help="number of folds K (>= 2)")
    p.add_argument("--no-refit", action="store_true", help="skip the final refit on train+val")
    p.add_argument("--overwrite", action="store_true", help="start again, deleting an earlier cross-validation in "
                                                            "--out")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runs.crossval import cross_validate  # the workflow loads PyTorch: imported when the command runs
    from .progress import DecodeProgress, DownloadProgress, TrainingProgress

    cfg = config_from_args(args)
    if cfg is None:
        return 0
    if not args.out:
        raise ConfigError("medclass cv needs --out DIR (the cross-validation folder to create or continue).")
    args.interrupt_hint = f"Continue with the same command: completed folds in {args.out} are skipped."
    quiet = args.quiet

    def stage(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr)

    cv = cross_validate(cfg, args.out, folds=args.folds, refit=not args.no_refit, overwrite=args.overwrite,
                        callbacks=[TrainingProgress(enabled=not quiet)], on_stage=stage,
                        download_progress=DownloadProgress(enabled=not quiet),
                        decode_progress=DecodeProgress(enabled=not quiet))
    print(f"{cv['dataset']}: {cv['folds']}-fold cross-validation (unit: {cv['unit']}; pool: {cv['pool']})")
    rows = [[r["fold"], r["best_epoch"], r["auc"], r["acc"], r["n_val"]] for r in cv["per_fold"]]
    stats = cv["across_folds"]
    rows.append(["mean ± sd", "", *(f"{stats[k]['mean']:.4f} ± {stats[k]['sd']:.4f}" if k in stats else "n/a"
                                    for k in ("auc", "acc")), ""])
    oof = cv["oof"]
    iv = oof.get("intervals", {})
    rows.append(["out-of-fold", "", *(f"{oof[k]:.4f} [{iv[k]['low']:.4f}, {iv[k]['high']:.4f}]" if k in iv else
                                      oof.get(k, "n/a") for k in ("auc", "acc")), oof["n"]])
    print(simple_table(["fold", "best epoch", "val AUC", "val ACC", "n"], rows))
    print(f"wrote {args.out}/cv.json and {args.out}/oof.csv")
    if cv["refit"]:
        print(f"refit: {args.out}/refit, trained on train+val for {cv['refit']['epochs']} epoch(s) (the median best "
              f"epoch), last epoch kept; its val predictions are the out-of-fold ones")
        print(f"next: medclass evaluate {args.out}/refit --split test   or   medclass ensemble {args.out} "
              f"--split test --out {args.out}/ensemble")
    else:
        print(f"next: medclass ensemble {args.out} --split test --out {args.out}/ensemble")
    return 0

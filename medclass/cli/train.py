"""``medclass train``: train a recipe on a dataset into a run folder, or ``--resume`` one."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from . import auto
from .options import config_from_args, config_parent


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train", help="train a model into a run folder (or resume one)",
                       parents=[parent, config_parent(extra_recipes=("auto",))],
                       description="Train a model. Settings resolve as: defaults < --recipe < --config < flags. "
                                   "--recipe auto chooses the recipe within --budget (the same as `medclass auto`).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    auto.add_auto_options(p, for_train=True)
    p.add_argument("--out", metavar="DIR", help="run folder to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last epoch")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    p.set_defaults(run=run)


_RESUME_CONFLICTS = ("recipe", "config", "out", "dataset", "seed", "size", "model", "epochs", "batch_size", "device",
                     "manifest", "image_root", "preset")  # --lr is allowed: a diverged run resumes at a lower rate


def run(args: argparse.Namespace) -> int:
    # the workflow loads PyTorch, so it is imported when the command runs (`--help` starts in well under a second)
    from ..runs.train import resume, train
    from .progress import DecodeProgress, DownloadProgress, TrainingProgress

    auto_flags = [f for f, given in (("--budget", args.budget is not None), ("--no-ensemble", args.no_ensemble),
                                     ("--candidates", args.candidates is not None),
                                     ("--folds", args.folds is not None)) if given]
    if args.recipe == "auto":
        if args.resume:
            raise ConfigError("--recipe auto cannot --resume: auto does not resume. Start it again with --out DIR "
                              "--overwrite.")
        return auto.run(args)
    if auto_flags:
        raise ConfigError(f"{', '.join(auto_flags)} only apply with --recipe auto (or `medclass auto`).")
    progress = TrainingProgress(enabled=not args.quiet)
    download = DownloadProgress(enabled=not args.quiet)
    decode = DecodeProgress(enabled=not args.quiet)
    if args.resume:
        conflicting = [f"--{n.replace('_', '-')}" for n in _RESUME_CONFLICTS if getattr(args, n) is not None]
        conflicting += (["--set"] if args.set else []) + (["--overwrite"] if args.overwrite else [])
        if conflicting:
            raise ConfigError(f"--resume continues a run with its saved config.yaml; it cannot be combined with "
                              f"{', '.join(conflicting)}. Start a new run with --out to change settings.")
        args.interrupt_hint = f"Continue with: medclass train --resume {args.resume}"
        folder = resume(args.resume, callbacks=[progress], data_dir=args.data_dir, download_progress=download,
                        decode_progress=decode, lr=args.lr)
    else:
        cfg = config_from_args(args)
        if cfg is None:
            return 0
        if not args.out:
            raise ConfigError("medclass train needs --out DIR (the run folder to create), or --resume RUN_DIR.")
        args.interrupt_hint = f"Continue with: medclass train --resume {args.out}"
        folder = train(cfg, args.out, overwrite=args.overwrite, callbacks=[progress], download_progress=download,
                       decode_progress=decode)
    st = folder.read_status()
    monitor = st.get("monitor", "val_auc")
    print(f"done: {folder.path}  kept epoch {st['best_epoch']} ({monitor} {st[f'best_{monitor}']:.4f}, "
          f"{_rule(st)})  {st['train_seconds']:.0f}s training, {st['images_per_s']:.0f} img/s", file=sys.stdout)
    print(f"next: medclass evaluate {folder.path} --split test")
    return 0


def _rule(st: dict) -> str:
    """How the kept epoch was chosen, from status.json."""
    if st.get("checkpoint") == "last":
        return "the last epoch"
    monitor = st.get("monitor", "val_auc")
    top, kept, k = st.get(f"highest_{monitor}"), st.get(f"best_{monitor}"), st.get("checkpoint_tolerance")
    if top is not None and kept is not None and top != kept and k:
        return f"within {k:g} SE of the highest, {top:.4f}"
    return "the highest"

"""``medclass lr-find``: the learning-rate range test; prints a suggested ``train.lr`` and can draw the curve."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from .options import config_from_args, config_parent

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("lr-find", help="learning-rate range test: suggest train.lr", parents=[parent, config_parent()],
                       description="Train the configured model for a few steps while the learning rate grows "
                                   "exponentially from --start to --end (Smith 2017; fastai's lr_find), and suggest "
                                   "the rate where the loss falls fastest. Settings resolve as for `medclass train`.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--start", type=float, default=1e-7, help="first learning rate")
    p.add_argument("--end", type=float, default=10.0, help="last learning rate")
    p.add_argument("--steps", type=int, default=100, help="optimisation steps (rates tried)")
    p.add_argument("--plot", metavar="FILE.png", help="write the loss curve with both suggestions here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.start < args.end or args.steps < 2:
        raise ConfigError(f"lr-find needs 0 < --start < --end and --steps >= 2. Got --start {args.start}, "
                          f"--end {args.end}, --steps {args.steps}.")
    from tqdm import tqdm  # the workflow loads PyTorch: imported when the command runs

    from ..runs.diagnostics import lr_range_test
    from ..training import plot_lr_range
    from .progress import DownloadProgress

    cfg = config_from_args(args)
    if not args.quiet:
        print(f"lr range test: {args.steps} training steps of {cfg.model.name} on {cfg.data.dataset}, the learning "
              f"rate growing from {args.start:g} to {args.end:g}; it stops early if the loss diverges. The bar shows "
              f"the time left.", file=sys.stderr)
    bar = tqdm(total=args.steps, unit="step", dynamic_ncols=True, disable=args.quiet, file=sys.stderr,
               desc="lr range test")

    def progress(step: int, lr: float, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(lr=f"{lr:.2g}", loss=f"{loss:.3f}", refresh=False)

    try:
        r = lr_range_test(cfg, start=args.start, end=args.end, steps=args.steps, progress=progress,
                          download_progress=DownloadProgress(enabled=not args.quiet))
    finally:
        bar.close()
    stop = "stopped when the loss diverged" if r.diverged else "reached the last rate"
    print(f"lr range test: {cfg.model.name} on {cfg.data.dataset}, {cfg.train.optimizer}, {len(r.lrs)} steps from "
          f"{r.lrs[0]:.2g} to {r.lrs[-1]:.2g} ({stop})")
    print(f"lowest loss (trend) {min(v for v in r.trend if v == v):.4f} at lr {r.min_loss_lr:.3g}")
    print(f"suggested lr (steepest descent): {r.suggestion:.3g}   (min-loss lr / 10: {r.min_loss_div10:.3g})")
    print(f"next: medclass train --dataset {cfg.data.dataset} --lr {r.suggestion:.2g} ...")
    if args.plot:
        print(f"wrote {plot_lr_range(r, args.plot)}")
    return 0

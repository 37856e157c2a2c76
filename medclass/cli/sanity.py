"""``medclass sanity``: can the model overfit one or two mini-batches to about zero loss?

Takes the configuration flags of ``medclass train`` (recipe < --config < flags), so the check runs what the run
would train.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from .options import config_from_args, config_parent

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sanity", help="check that the model can overfit one or two mini-batches",
                       parents=[parent, config_parent()],
                       description="Train the configured model on the same one or two training batches (no "
                                   "augmentation, dropout, weight decay or label smoothing; constant train.lr) and "
                                   "check that the loss falls to about zero; it stops as soon as the loss has stayed "
                                   "there for three rounds. Exit status 0 when it does, 1 when not, with advice. "
                                   "Settings resolve as for `medclass train`.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--batches", type=int, default=1, choices=(1, 2, 3, 4), help="how many fixed batches")
    p.add_argument("--steps", type=int, default=200, help="most optimisation steps (fewer when it passes early)")
    p.add_argument("--threshold", type=float, default=0.05, help="the loss must end at or below this value")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or not args.threshold > 0:
        raise ConfigError(f"--steps must be >= 1 and --threshold > 0. Got {args.steps} and {args.threshold}.")
    from tqdm import tqdm  # the workflow loads PyTorch: imported when the command runs

    from ..runs.diagnostics import sanity_check
    from .progress import DownloadProgress

    cfg = config_from_args(args)
    bar = tqdm(total=args.steps, unit="step", dynamic_ncols=True, disable=args.quiet, file=sys.stderr,
               desc="overfitting")

    def progress(step: int, loss: float) -> None:
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    try:
        r = sanity_check(cfg, n_batches=args.batches, steps=args.steps, threshold=args.threshold, progress=progress,
                         download_progress=DownloadProgress(enabled=not args.quiet))
    finally:
        bar.close()
    t = cfg.train
    print(f"sanity check: {cfg.model.name} on {r.n_batches} batch(es) of {cfg.data.dataset} ({r.n_images} images), "
          f"{t.optimizer} at lr {r.lr:.3g}, {len(r.losses)} steps")
    print("  step  loss")
    for step, loss in r.curve():
        print(f"  {step:>4}  {loss:.4f}")
    reached = r.steps_to_threshold
    print(f"loss {r.start_loss:.4f} -> {r.end_loss:.4f}; batch accuracy {r.batch_accuracy:.1%}"
          + (f"; at or below {r.threshold:g} after {reached} steps" if reached else ""))
    if r.passed:
        stop = (f" Stopped after {len(r.losses)} of {args.steps} steps: the loss stayed at or below the threshold "
                f"for three rounds, which is all this check needs to show." if r.stopped_early else "")
        print(f"PASS: the loss fell below {r.threshold:g}; the model, loss and optimiser can learn these images.{stop}")
        return 0
    print(f"FAIL: the loss did not fall below {r.threshold:g}.")
    for line in r.advice:
        print(f"  - {line}")
    return 1

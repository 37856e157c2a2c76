"""``medclass sanity``: can the model overfit one or two mini-batches to about zero loss?

Shares its configuration flags with ``medclass lr-find`` (:func:`add_config_arguments`): the same
settings as ``medclass train`` (recipe < --config < flags), so the check runs what the run would train.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from ..config import RunConfig, build_config
from ..errors import ConfigError
from ..recipes import list_recipes
from ..runs.diagnostics import sanity_check
from .progress import DownloadProgress
from .train import overrides_from_args

__all__ = ["add_parser", "add_config_arguments", "config_from_args"]


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The settings flags of ``medclass train`` that make sense without a run folder."""
    p.add_argument("--dataset", help="MedMNIST name (see `medclass data list`) or a MedMNIST-layout .npz path")
    p.add_argument("--recipe", default=None, choices=list_recipes(),
                   help="named recipe to start from (default: the `default` recipe)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file of settings, applied over the recipe")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override any setting, e.g. --set train.optimizer=sgd --set model.width=32")
    p.add_argument("--size", type=int, help="image size in px (28, 64, 128, 224)")
    p.add_argument("--model", help="architecture (see `medclass models list`)")
    p.add_argument("--batch-size", type=int, help="images per step")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the dataset files (else $MEDCLASS_DATA, then cache)")
    p.add_argument("--no-download", action="store_true", help="never download; fail if the data is missing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return build_config(args.recipe, args.config, overrides_from_args(args))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sanity", help="check that the model can overfit one or two mini-batches",
                       description="Train the configured model on the same one or two training batches (no "
                                   "augmentation, dropout, weight decay or label smoothing; constant train.lr) and "
                                   "check that the loss falls to about zero. Exit status 0 when it does, 1 when "
                                   "not, with advice. Settings resolve as for `medclass train`.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_arguments(p)
    p.add_argument("--batches", type=int, default=1, choices=(1, 2, 3, 4), help="how many fixed batches")
    p.add_argument("--steps", type=int, default=200, help="optimisation steps")
    p.add_argument("--threshold", type=float, default=0.05, help="the loss must end at or below this value")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or not args.threshold > 0:
        raise ConfigError(f"--steps must be >= 1 and --threshold > 0. Got {args.steps} and {args.threshold}.")
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
        print(f"PASS: the loss fell below {r.threshold:g}; the model, loss and optimiser can learn these images.")
        return 0
    print(f"FAIL: the loss did not fall below {r.threshold:g}.")
    for line in r.advice:
        print(f"  - {line}")
    return 1

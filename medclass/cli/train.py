"""``medclass train``: train a recipe on a dataset into a run folder, or ``--resume`` one."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config import RunConfig, build_config, config_to_dict, deep_merge, parse_overrides
from ..errors import ConfigError
from ..recipes import list_recipes
from ..runs import resume, train
from .progress import DecodeProgress, DownloadProgress, TrainingProgress

# Shortcut flags and the config key each one sets (anything else: --set key=value).
SHORTCUTS = {
    "dataset": "data.dataset", "size": "data.size", "data_dir": "data.data_dir", "model": "model.name",
    "epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr", "device": "train.device",
    "seed": "seed", "manifest": "data.manifest", "image_root": "data.image_root", "preset": "data.preprocess.preset",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model into a run folder (or resume one)",
                       description="Train a model. Settings resolve as: defaults < --recipe < --config < flags.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_arguments(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last epoch")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    p.set_defaults(run=run)


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The options that build a RunConfig (shared with ``medclass cv``); :func:`overrides_from_args` reads them."""
    p.add_argument("--dataset", help="MedMNIST name (see `medclass data list`) or a MedMNIST-layout .npz path")
    p.add_argument("--recipe", default=None, choices=list_recipes(),
                   help="named recipe to start from (default: the `default` recipe)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file of settings, applied over the recipe")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override any setting, e.g. --set train.lr=0.001 --set train.augment.hflip=true")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--out", metavar="DIR", help="run folder to create")
    p.add_argument("--size", type=int, help="image size in px (28, 64, 128, 224)")
    p.add_argument("--model", help="architecture (see `medclass models list`)")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--batch-size", type=int, help="images per step")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the dataset files (else $MEDCLASS_DATA, then cache)")
    p.add_argument("--no-download", action="store_true", help="never download; fail if the data is missing")
    p.add_argument("--manifest", metavar="CSV", help="train on your own images listed in a manifest CSV "
                                                     "(see `medclass data import-folder` and `medclass data check`)")
    p.add_argument("--image-root", metavar="DIR", help="folder the manifest's paths are relative to "
                                                       "(default: the manifest's folder)")
    p.add_argument("--preset", help="preprocessing preset for your own images (ct-lung, xray, fundus, ...)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable or invalid manifest rows (listed in "
                                                           "bad_rows.csv) instead of stopping")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the shortcut flags and ``--set`` give; commands with fewer flags (sanity, search) lack some."""
    flat = [f"{key}={getattr(args, name)}" for name, key in SHORTCUTS.items()
            if getattr(args, name, None) is not None]
    if args.no_download:
        flat.append("data.download=false")
    if getattr(args, "skip_bad", False):
        flat.append("data.skip_bad=true")
    # --set wins over the shortcut flags only where they name the same key; both win over YAML.
    return deep_merge(parse_overrides(flat), parse_overrides(args.set))


def config_from_args(args: argparse.Namespace) -> RunConfig | None:
    """The configuration the options give; with ``--print-config`` print it and return ``None``."""
    cfg = build_config(args.recipe, args.config, overrides_from_args(args))
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return None
    return cfg


def run(args: argparse.Namespace) -> int:
    progress = TrainingProgress(enabled=not args.quiet)
    download = DownloadProgress(enabled=not args.quiet)
    decode = DecodeProgress(enabled=not args.quiet)
    if args.resume:
        conflicting = [f"--{n.replace('_', '-')}" for n in ("recipe", "config", "out", "dataset", "seed", "size",
                                                          "model", "epochs", "batch_size", "lr", "device",
                                                          "manifest", "image_root", "preset")
                       if getattr(args, n) is not None] + (["--set"] if args.set else [])
        if conflicting or args.overwrite:
            raise ConfigError(f"--resume continues a run with its saved config.yaml; it cannot be combined with "
                              f"{', '.join(conflicting + (['--overwrite'] if args.overwrite else []))}. "
                              f"Start a new run with --out to change settings.")
        args.interrupt_hint = f"Continue with: medclass train --resume {args.resume}"
        folder = resume(args.resume, callbacks=[progress], data_dir=args.data_dir, download_progress=download,
                        decode_progress=decode)
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
    print(f"done: {folder.path}  best epoch {st['best_epoch']} ({monitor} {st[f'best_{monitor}']:.4f})  "
          f"{st['train_seconds']:.0f}s training, {st['images_per_s']:.0f} img/s", file=sys.stdout)
    print(f"next: medclass evaluate {folder.path} --split test")
    return 0

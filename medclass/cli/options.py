"""Options shared by several commands: the configuration flags (one parent parser) and verbosity.

Flag values reach the configuration typed: :func:`overrides_from_args` builds the nested dict
``{"data": {"data_dir": "/data/run #1"}}`` from the parsed (already typed) values and hands it to
:func:`medclass.config.build_config`; nothing is rendered to a string and parsed again. Only ``--set`` values,
which the user types as ``key=value`` text, are read as YAML scalars (``train.lr=1e-3`` is a number).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import yaml

from ..config import RunConfig, build_config, config_to_dict, deep_merge, parse_overrides
from ..recipes import list_recipes

__all__ = ["config_parent", "verbosity_parent", "overrides_from_args", "config_from_args", "SHORTCUTS"]

log = logging.getLogger(__name__)

# Shortcut flags and the config key each one sets (anything else: --set key=value).
SHORTCUTS = {
    "dataset": "data.dataset", "size": "data.size", "data_dir": "data.data_dir", "model": "model.name",
    "epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr", "device": "train.device",
    "seed": "seed", "manifest": "data.manifest", "image_root": "data.image_root", "preset": "data.preprocess.preset",
}


def verbosity_parent() -> argparse.ArgumentParser:
    """``-v`` accepted after the sub-command too (``medclass train ... -v``)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                   help="more log output (-vv for debug); tracebacks of unexpected errors")
    return p


def config_parent(extra_recipes: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """The flags that build a RunConfig, shared by train, cv, sanity, lr-find, search and auto.

    ``extra_recipes`` are recipe names a command handles itself (``train --recipe auto``), not static ones.
    """
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("configuration (defaults < --recipe < --config < flags < --set)")
    g.add_argument("--dataset", help="MedMNIST name (see `medclass data list`) or a MedMNIST-layout .npz path")
    extra = " or `auto` (screen candidate recipes within --budget, see `medclass auto --help`)" if extra_recipes \
        else ""
    g.add_argument("--recipe", default=None, choices=[*list_recipes(), *extra_recipes],
                   help=f"named recipe to start from (default: the `default` recipe){extra}")
    g.add_argument("--config", metavar="FILE.yaml", help="YAML file of settings, applied over the recipe")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override any setting, e.g. --set train.lr=0.001 --set train.augment.hflip=true")
    g.add_argument("--seed", type=int, help="random seed")
    g.add_argument("--size", type=int, help="image size in px (MedMNIST: 28, 64, 128, 224)")
    g.add_argument("--model", help="architecture (see `medclass models list`)")
    g.add_argument("--epochs", type=int, help="number of epochs")
    g.add_argument("--batch-size", type=int, help="images per step")
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--data-dir", metavar="DIR", help="folder with the MedMNIST files (else $MEDCLASS_DATA, then the "
                                                     "user cache)")
    g.add_argument("--no-download", action="store_true", help="never download; fail if the data is missing")
    g.add_argument("--manifest", metavar="CSV", help="train on your own images listed in a manifest CSV "
                                                     "(see `medclass data import-folder` and `medclass data check`)")
    g.add_argument("--image-root", metavar="DIR", help="folder the manifest's paths are relative to "
                                                       "(default: the manifest's folder)")
    g.add_argument("--preset", help="preprocessing preset for your own images (ct-lung, xray, fundus, ...)")
    g.add_argument("--skip-bad", action="store_true", help="skip unreadable or invalid manifest rows (listed in "
                                                           "bad_rows.csv) instead of stopping")
    g.add_argument("--volumes", action="store_true", help="the manifest lists volumes (NIfTI files, DICOM series "
                                                          "folders) for a 3D model (data.volumes)")
    return p


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the shortcut flags and ``--set`` give, as a nested dict of typed values."""
    out: dict[str, Any] = {}
    for name, key in SHORTCUTS.items():
        value = getattr(args, name, None)
        if value is not None:
            _set(out, key, value)
    if getattr(args, "no_download", False):
        _set(out, "data.download", False)
    if getattr(args, "skip_bad", False):
        _set(out, "data.skip_bad", True)
    if getattr(args, "volumes", False):
        _set(out, "data.volumes", True)
    if getattr(args, "data_dir", None) and getattr(args, "manifest", None):
        print("warning: --data-dir names the folder of MedMNIST files; with --manifest the images come from the "
              "manifest (and --image-root), so --data-dir is not used.", file=sys.stderr)
    # --set wins over the shortcut flags only where they name the same key; both win over YAML
    return deep_merge(out, parse_overrides(getattr(args, "set", []) or []))


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = value


def config_from_args(args: argparse.Namespace) -> RunConfig | None:
    """The configuration the options give; with ``--print-config`` print it and return ``None``."""
    cfg = build_config(args.recipe, args.config, overrides_from_args(args))
    if getattr(args, "print_config", False):
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return None
    return cfg

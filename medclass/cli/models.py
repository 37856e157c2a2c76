"""``medclass models``: the registered architectures and their cards (read from the model catalogue)."""

from __future__ import annotations

import argparse
import fnmatch
import json
from importlib import resources
from typing import Any

from ..errors import ConfigError, did_you_mean
from .tables import simple_table


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("models", help="list registered architectures", parents=[parent])
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = msub.add_parser("list", parents=[parent],
                         help="every registered model: family, size, pretrained weights, CAM support")
    ls.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    ls.set_defaults(run=run_list)
    info = msub.add_parser("info", parents=[parent], help="one model's full card")
    info.add_argument("name", help="a registered model name, e.g. resnet18")
    info.set_defaults(run=run_info)


def catalog() -> dict[str, dict[str, Any]]:
    """The model catalogue (:mod:`medclass.models.catalog`), read without importing the model families."""
    return json.loads((resources.files("medclass") / "models" / "catalog.json").read_text(encoding="utf-8"))


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def _weights(source: str) -> str:
    return source.partition(":")[0] if source else "-"


def run_list(args: argparse.Namespace) -> int:
    cards = catalog()
    rows = [[name, c["family"], _millions(c["params"]), c["min_input_size"], f"{c.get('spatial_dims', 2)}D",
             _weights(c["imagenet_weights"]), "cam, gradcam" if c["supports_cam"] else "gradcam", c["description"]]
            for name, c in sorted(cards.items()) if fnmatch.fnmatch(name, args.pattern)]
    print(simple_table(["name", "family", "params", "min px", "dims", "ImageNet", "heatmaps", "description"], rows))
    print("params: 1 channel at the model's default input size, 2 classes. ImageNet: where "
          "`model.pretrained=imagenet` weights come from. dims: 2D models take images, 3D models volumes "
          "(the MedMNIST 3D datasets).")
    return 0


def run_info(args: argparse.Namespace) -> int:
    cards = catalog()
    if args.name not in cards:
        raise ConfigError(f"Unknown model {args.name!r}.{did_you_mean(args.name, cards)} See `medclass models list`.")
    c = cards[args.name]
    rows = [["family", c["family"]], ["input", "3D volumes" if c.get("spatial_dims", 2) == 3 else "2D images"],
            ["description", c["description"]], ["reference", c["reference"]],
            ["parameters", f"{c['params']:,} at {c['input_size']} px x 1 channel; {c['params_224_rgb']:,} at 224 px "
                           f"x 3 channels (2 classes)"],
            ["default / min input", f"{c['input_size']} px / {c['min_input_size']} px"],
            ["ImageNet weights", c["imagenet_weights"] or "none"],
            ["weights' mean / std", f"{tuple(c['mean'])} / {tuple(c['std'])}"],
            ["input conv", c["first_conv"] or "-"], ["classifier", c["classifier"]], ["cam layer", c["cam_layer"]],
            ["heatmaps", "cam, gradcam" if c["supports_cam"] else "gradcam (the head is not pool + linear)"],
            ["blocks (last-k)", ", ".join(c["blocks"]) or "-"]]
    print(simple_table([args.name, ""], rows))
    return 0

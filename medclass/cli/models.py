"""``medclass models``: the registered architectures and their cards."""

from __future__ import annotations

import argparse

from ..models import count_parameters, get_model_card, list_models
from .tables import simple_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered architectures")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = msub.add_parser("list", help="every registered model: family, size, pretrained weights, CAM support")
    ls.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    ls.set_defaults(run=run_list)
    info = msub.add_parser("info", help="one model's full card")
    info.add_argument("name", help="a registered model name, e.g. resnet18")
    info.set_defaults(run=run_info)


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def _weights(source: str) -> str:
    return source.partition(":")[0] if source else "-"


def run_list(args: argparse.Namespace) -> int:
    rows = []
    for name in list_models(args.pattern):
        c = get_model_card(name)
        rows.append([name, c.family, _millions(count_parameters(name)), c.min_input_size,
                     _weights(c.imagenet_weights), "cam, gradcam" if c.supports_cam else "gradcam", c.description])
    print(simple_table(["name", "family", "params (28 px)", "min px", "ImageNet", "heatmaps", "description"], rows))
    print("params: 1-channel 28 px input, 2 classes. ImageNet: where `model.pretrained=imagenet` weights come from.")
    return 0


def run_info(args: argparse.Namespace) -> int:
    c = get_model_card(args.name)
    rows = [["family", c.family], ["description", c.description], ["reference", c.reference],
            ["parameters", f"{count_parameters(c.name):,} at 28 px x 1 channel; "
                           f"{count_parameters(c.name, in_chans=3, input_size=224):,} at 224 px x 3 channels "
                           f"(2 classes)"],
            ["default / min input", f"{c.input_size} px / {c.min_input_size} px"],
            ["ImageNet weights", c.imagenet_weights or "none"],
            ["weights' mean / std", f"{c.mean} / {c.std}"],
            ["input conv", c.first_conv or "-"], ["classifier", c.classifier], ["cam layer", c.cam_layer],
            ["heatmaps", "cam, gradcam" if c.supports_cam else "gradcam (the head is not pool + linear)"],
            ["blocks (last-k)", ", ".join(c.blocks) or "-"]]
    print(simple_table([c.name, ""], rows))
    return 0

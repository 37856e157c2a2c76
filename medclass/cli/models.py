"""``medclass models``: the registered architectures and their cards."""

from __future__ import annotations

import argparse

from ..models import get_model_card, list_models
from .tables import simple_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered architectures")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = msub.add_parser("list", help="every registered model with its card")
    ls.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    ls.set_defaults(run=run_list)


def run_list(args: argparse.Namespace) -> int:
    rows = []
    for name in list_models(args.pattern):
        c = get_model_card(name)
        rows.append([name, c.family, c.input_size, c.classifier, c.cam_layer, c.description])
    print(simple_table(["name", "family", "input", "classifier", "cam layer", "description"], rows))
    return 0

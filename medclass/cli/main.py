"""``medclass`` console entry point: one sub-command per module, errors printed as one clear line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import MedclassError
from . import (
    compare,
    crossval,
    data,
    ensemble,
    evaluate,
    explain,
    ladder,
    lr_find,
    models,
    predict,
    report,
    sanity,
    search,
    train,
)

__all__ = ["main", "build_parser"]

COMMANDS = (train, crossval, sanity, lr_find, search, evaluate, ensemble, report, compare, ladder, explain, predict,
            data, models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medclass", description="Deep-learning classification of medical images, honestly evaluated.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except MedclassError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "interrupt_hint", None)
        print(f"\ninterrupted.{' ' + hint if hint else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

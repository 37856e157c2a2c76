"""``medclass`` console entry point: one sub-command per module, errors printed as one clear line.

Start-up stays under a second: command modules import only light modules (the configuration, the MedMNIST
catalogue, the model catalogue) at the top, and each command imports its workflow (PyTorch and friends) when
it runs. Known errors (bad input, a full or read-only disk, diverging training, Ctrl-C) print one line and exit
with status 2 (130 for Ctrl-C); anything unexpected prints one line asking for ``-v``, which shows the traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Sequence

from ..errors import MedclassError
from . import (
    auto,
    compare,
    crossval,
    data,
    ensemble,
    evaluate,
    explain,
    export,
    ladder,
    lr_find,
    models,
    predict,
    report,
    sanity,
    search,
    train,
)
from .options import verbosity_parent

__all__ = ["main", "build_parser"]

COMMANDS = (train, auto, crossval, sanity, lr_find, search, evaluate, ensemble, report, compare, ladder, explain,
            predict, export, data, models)

_DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EROFS: "the file system is read-only",
                errno.EACCES: "permission denied", errno.EDQUOT: "the disk quota is exceeded"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medclass", description="Deep-learning classification of medical images, honestly evaluated.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug); tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parent = verbosity_parent()
    for cmd in COMMANDS:
        cmd.add_parser(sub, parent)
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
    except OSError as e:
        if e.errno not in _DISK_ERRORS or args.verbose:
            raise
        where = f" writing '{e.filename}'" if e.filename else ""
        hint = getattr(args, "interrupt_hint", None)
        print(f"error: {_DISK_ERRORS[e.errno]}{where}. Free space (or fix the permissions) and run the command "
              f"again.{' ' + hint if hint else ''}", file=sys.stderr)
        return 2
    except MemoryError:
        if args.verbose:
            raise
        print("error: out of memory. Lower train.batch_size / eval.batch_size or data.size, and try again.",
              file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - one line for the user; the traceback with -v
        if args.verbose:
            raise
        print(f"error: unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n"
              f"This is a medclass bug or an unusual input. Run the command again with -v for the traceback, and "
              f"report it.", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

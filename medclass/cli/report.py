"""``medclass report``: write the self-contained report.html of a finished, scored run."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("report", help="write report.html for a scored run", parents=[parent],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder, scored with medclass evaluate")
    p.add_argument("--split", default="test", choices=("val", "test"), help="split the report presents")
    p.add_argument("--out", metavar="FILE.html", help="where to write it (default RUN_DIR/report.html)")
    p.add_argument("--no-gallery", action="store_true", help="do not build a missing heatmap gallery (the report "
                                                             "then names the command that builds it)")
    p.add_argument("--data-dir", metavar="DIR", help="where the dataset is on this machine (for the gallery)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runs.report import write_report  # imported when the command runs (matplotlib, PyTorch)

    path = write_report(args.run_dir, split=args.split, out=args.out, gallery=not args.no_gallery,
                        data_dir=args.data_dir)
    print(f"report: {path.resolve()}")
    return 0

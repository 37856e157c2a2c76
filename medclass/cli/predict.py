"""``medclass predict``: class probabilities for new image files from a finished run."""

from __future__ import annotations

import argparse
import csv
import io

from ..runs import load_run
from ..utils.io import atomic_write_text
from .tables import simple_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict image files with a finished run",
                       description="Images of another size or channel count are centre-cropped, resized and "
                                   "converted the way the training data was.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="PNG, JPEG, TIFF or BMP files")
    p.add_argument("--out", metavar="FILE.csv", help="write predictions to this CSV (else print them)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = load_run(args.run_dir, device=args.device)
    proba = model.predict_proba(args.images)
    decision = model.decide(proba)
    names = ["value"] if model.task_ == "regression" else model.classes_
    header = ["path", "prediction", *[f"p({c})" if model.task_ != "regression" else c for c in names]]
    rows = [[path, label, *[float(v) for v in p]] for path, label, p in zip(args.images, model.describe(decision),
                                                                            proba)]
    if args.out:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows([[r[0], r[1], *(f"{v:.6f}" for v in r[2:])] for r in rows])
        atomic_write_text(args.out, buf.getvalue())
        print(f"wrote {len(rows)} predictions to {args.out}")
    else:
        print(simple_table(header, rows))
    return 0

"""``medclass export``: a trained run as a self-contained ONNX or TorchScript model with a JSON sidecar."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", help="export a finished run as ONNX or TorchScript (model + JSON sidecar)",
                       parents=[parent],
                       description="Write a self-contained model file whose input is the uint8 image the run's "
                                   "input pipeline makes (N, H, W, C) and whose output is the class probabilities, "
                                   "plus a JSON sidecar beside it (model.onnx.json) with the classes, "
                                   "task, input spec, preprocessing, operating points, medclass version and run id. "
                                   "`medclass predict --engine onnx MODEL.onnx IMAGES...` runs it through ONNX "
                                   "Runtime with the same preprocessing. ONNX needs: pip install \"medclass[export]\".",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder")
    p.add_argument("--format", default="onnx", choices=("onnx", "torchscript"), help="model file format")
    p.add_argument("--out", metavar="FILE", help="model file to write (default RUN_DIR/export/model.onnx or "
                                                 "model.pt)")
    p.add_argument("--no-check", action="store_true", help="skip the check that the exported model reproduces the "
                                                           "run's probabilities on random inputs")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runs.export import export_run  # the workflow loads PyTorch: imported when the command runs

    r = export_run(args.run_dir, fmt=args.format, out=args.out, check=not args.no_check)
    print(f"wrote {r['model']} and {r['sidecar']}")
    if r.get("check"):
        print(f"check: max |exported - torch| = {r['check']['max_abs_diff']:.2e} over {r['check']['n']} inputs")
    return 0

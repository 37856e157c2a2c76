"""``medclass predict``: class probabilities for new images (files, folders, a manifest) from a finished run."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from ..errors import ConfigError, DataError
from ..utils.io import atomic_write_text


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("predict", help="predict image files, folders or a manifest with a finished run",
                       parents=[parent],
                       description="Every image goes through the run's own input pipeline (the frame/slice, "
                                   "windows, preset, resize, channels and normalisation it was trained with). "
                                   "The CSV has the columns of the run's predictions files (index, p_0, p_1, ..., "
                                   "path, prediction; and y when a manifest gives the labels), so it can be graded "
                                   "with `medclass evaluate --predictions`.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder, or with --engine onnx/torchscript a "
                                                      "model written by `medclass export` (with its .json sidecar)")
    p.add_argument("inputs", metavar="INPUT", nargs="*", help="image files (PNG, JPEG, TIFF, DICOM, NIfTI) or folders")
    p.add_argument("--manifest", metavar="CSV", help="a CSV with a path column (and optionally the run's label column "
                                                     "and metadata columns, carried into the output)")
    p.add_argument("--image-root", metavar="DIR", help="folder the manifest's paths are relative to (default: the "
                                                       "CSV's folder)")
    p.add_argument("--recursive", action="store_true", help="also read the files in sub-folders of a folder")
    p.add_argument("--skip-bad", action="store_true", help="go on past files that cannot be used; they are listed "
                                                           "at the end (and in OUT.bad.csv with --out)")
    p.add_argument("--out", metavar="FILE.csv", help="write predictions to this CSV (else print them)")
    p.add_argument("--engine", default="torch", choices=("torch", "onnx", "torchscript"),
                   help="torch: the run's checkpoint; onnx: a model written by `medclass export` run by ONNX Runtime "
                        "(a run folder: its export/model.onnx); torchscript: one written by `medclass export --format "
                        "torchscript`")
    p.add_argument("--device", default="cpu", help="cpu or cuda (torch engine)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..run_folder import write_predictions  # the workflow loads PyTorch: imported when the command runs
    from ..runs.predict import expand_inputs, read_predict_manifest
    from .progress import CountProgress
    from .tables import simple_table

    if not args.inputs and not args.manifest:
        raise ConfigError("Nothing to predict: give image files or folders, or --manifest CSV.")
    model = _load(args)
    views = model.pipeline_.views
    if views:
        raise ConfigError(f"{args.run_dir} classifies cases of {len(views)} images ({', '.join(views)}), not single "
                          f"files. Score a manifest of cases (with its case and view columns) with `medclass "
                          f"evaluate {args.run_dir} --manifest cases.csv`, or pass each case's files to "
                          f"medclass.load_run(...).predict_proba([{{view: file, ...}}, ...]) in Python.")
    labels, columns = None, {}
    if args.manifest:
        if args.inputs:
            raise ConfigError("Give either image files/folders or --manifest, not both.")
        data = model.meta_.get("config", {}).get("data", {})
        files, labels, columns = read_predict_manifest(args.manifest, args.image_root,
                                                       path_column=data.get("path_column", "path"),
                                                       label_column=(data.get("label_columns") or ["label"])[0],
                                                       classes=model.classes_)
    else:
        files = expand_inputs(args.inputs, recursive=args.recursive, volumes=model.pipeline_.spatial_dims == 3)
    bar = CountProgress("predict", enabled=not args.quiet and len(files) > 20)
    prepared = model.prepare_many([str(f) for f in files], skip_bad=args.skip_bad, progress=bar)
    proba = model.predict_batch(prepared.batch)
    kept = prepared.kept
    names = [prepared.names[i] for i in kept]
    described = model.describe(model.decide(proba)) if len(kept) else []
    extra = {"path": names, **{c: [v[i] for i in kept] for c, v in columns.items()}, "prediction": described}
    y = None if labels is None else labels[kept]
    if args.out:
        write_predictions(args.out, y, proba, extra)
        print(f"wrote {len(kept)} predictions to {args.out}")
        print("columns p_0, p_1, ...: " + ", ".join(f"p_{i} = {c}" for i, c in enumerate(_output_names(model))))
    else:
        head = ["path", "prediction", *_output_names(model)]
        print(simple_table(head, [[n, d, *[float(v) for v in p]] for n, d, p in zip(names, described, proba)]))
    for w in prepared.warnings[:10]:
        print(f"warning: {w}", file=sys.stderr)
    if prepared.bad:
        print(f"skipped {len(prepared.bad)} file(s) that could not be used:", file=sys.stderr)
        for _, name, reason in prepared.bad[:20]:
            print(f"  {name}: {reason}", file=sys.stderr)
        if args.out:
            bad_csv = Path(args.out).with_suffix(".bad.csv")
            _write_bad(bad_csv, prepared.bad)
            print(f"  (all listed in {bad_csv})", file=sys.stderr)
    if not kept:
        raise DataError("None of the images could be used; see the reasons above.")
    return 0


def _load(args: argparse.Namespace):
    if args.engine in ("onnx", "torchscript"):
        from ..runs.export import load_exported  # imported when the command runs

        return load_exported(args.run_dir, engine=args.engine)
    from ..runs.predict import load_run

    return load_run(args.run_dir, device=args.device)


def _output_names(model) -> list[str]:
    from ..evaluation.kinds import get_kind  # imported when the command runs

    return get_kind(model.task_).output_names(model.classes_)


def _write_bad(path: Path, bad: list[tuple[int, str, str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "reason"])
    w.writerows((name, reason) for _, name, reason in bad)
    atomic_write_text(path, buf.getvalue())

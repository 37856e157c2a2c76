"""``medclass explain``: heatmaps, filters and activation maps of a finished run; the report's gallery."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError

METHOD_HELP = "cam, gradcam, gradcam++ or occlusion"


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("explain", help="heatmaps (CAM, Grad-CAM, occlusion), filters and activations",
                       parents=[parent],
                       description="Where does the model look? Writes heatmap overlays (PNG) and raw maps (.npy) "
                                   "for image files or folders (read through the run's own input pipeline; for a "
                                   "volume run, NIfTI files or DICOM series folders, drawn as three planes through "
                                   "the hottest voxel), "
                                   "first-layer filters, a layer's activation maps, or the report's gallery of the "
                                   "most confident TP/FP/FN/TN.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder")
    p.add_argument("inputs", metavar="INPUT", nargs="*", help="image files (PNG, JPEG, TIFF, DICOM, NIfTI) or "
                                                              "folders; a volume run: NIfTI files or DICOM series "
                                                              "folders")
    p.add_argument("--recursive", action="store_true", help="also read the files in sub-folders of a folder")
    p.add_argument("--skip-bad", action="store_true", help="go on past files that cannot be used (listed)")
    p.add_argument("--method", default="gradcam", help=f"explanation method: {METHOD_HELP}")
    p.add_argument("--class", dest="class_idx", type=int, help="class index to explain (default: predicted class)")
    p.add_argument("--layer", help="module to map (default: the model card's CAM layer)")
    p.add_argument("--out", metavar="DIR", help="output folder (default RUN_DIR/explain)")
    p.add_argument("--filters", action="store_true", help="also draw the first-layer filters")
    p.add_argument("--activations", metavar="LAYER", help="also draw this layer's activation maps (first image)")
    p.add_argument("--gallery", action="store_true", help="build the report's gallery from a scored split")
    p.add_argument("--split", default="test", choices=("val", "test"), help="split of the gallery")
    p.add_argument("--per-group", type=int, default=4, help="gallery images per group")
    p.add_argument("--data-dir", metavar="DIR", help="where the dataset is (gallery)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not (args.inputs or args.filters or args.gallery):
        raise ConfigError("Nothing to explain: give image files or folders, --filters, or --gallery.")
    if args.activations and not args.inputs:
        raise ConfigError("--activations LAYER needs an image to run through the model.")
    from ..run_folder import RunFolder  # the workflow loads PyTorch and MONAI: imported when the command runs

    folder = RunFolder(args.run_dir).require_complete()
    with folder.lock("explain"):  # explain writes into the run folder (explain/, the report's gallery)
        return _explain(args)


def _explain(args: argparse.Namespace) -> int:
    from ..runs.explain import build_gallery, explain_activations, explain_filters, explain_images
    from ..runs.predict import expand_inputs, load_run

    out = args.out or f"{args.run_dir}/explain"
    model = load_run(args.run_dir) if (args.inputs or args.filters) else None
    if args.inputs:
        files = [str(f) for f in expand_inputs(args.inputs, recursive=args.recursive,
                                               volumes=model.pipeline_.spatial_dims == 3)]
        rows = explain_images(model, files, out, args.method, args.class_idx, args.layer, skip_bad=args.skip_bad)
        done = [r for r in rows if "error" not in r]
        for r in done:
            print(f"{r['image']}: {r['class']} (p = {r['probability']:.3f}) -> {r['overlay']}")
        for r in rows:
            if "error" in r:
                print(f"skipped {r['image']}: {r['error']}", file=sys.stderr)
        if args.activations and done:
            print(f"activations: {explain_activations(model, done[0]['image'], args.activations, out)}")
    if args.filters:
        print(f"filters: {explain_filters(model, out)}")
    if args.gallery:
        path = build_gallery(args.run_dir, args.split, args.per_group, args.method, args.data_dir)
        print(f"gallery: {path} (included by `medclass report`)")
    return 0

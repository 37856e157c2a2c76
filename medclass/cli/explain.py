"""``medclass explain``: heatmaps, filters and activation maps of a finished run; the report's gallery."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..interpret import METHODS
from ..runs.explain import build_gallery, explain_activations, explain_filters, explain_images
from ..runs.predict import load_run


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="heatmaps (CAM, Grad-CAM, occlusion), filters and activations",
                       description="Where does the model look? Writes heatmap overlays (PNG) and raw maps (.npy) "
                                   "for image files, first-layer filters, a layer's activation maps, or the "
                                   "report's gallery of the most confident TP/FP/FN/TN.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder")
    p.add_argument("images", metavar="IMAGE", nargs="*", help="image files to explain")
    p.add_argument("--method", default="gradcam", choices=METHODS, help="explanation method")
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
    if not (args.images or args.filters or args.gallery):
        raise ConfigError("Nothing to explain: give IMAGE files, --filters, or --gallery.")
    if args.activations and not args.images:
        raise ConfigError("--activations LAYER needs an IMAGE to run through the model.")
    out = args.out or f"{args.run_dir}/explain"
    model = load_run(args.run_dir) if (args.images or args.filters) else None
    if args.images:
        for r in explain_images(model, args.images, out, args.method, args.class_idx, args.layer):
            print(f"{r['image']}: {r['class']} (p = {r['probability']:.3f}) -> {r['overlay']}")
        if args.activations:
            print(f"activations: {explain_activations(model, args.images[0], args.activations, out)}")
    if args.filters:
        print(f"filters: {explain_filters(model, out)}")
    if args.gallery:
        path = build_gallery(args.run_dir, args.split, args.per_group, args.method, args.data_dir)
        print(f"gallery: {path} (included by `medclass report`)")
    return 0

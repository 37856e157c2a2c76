"""The heatmap gallery as the report reads it: ``explain/gallery.json`` and its figures, written by
:func:`medclass.runs.gallery.build_gallery` (``medclass explain RUN --gallery``, or ``medclass report``, which
builds it when it is missing or older than the split's predictions).

Grad-CAM (Selvaraju et al., ICCV 2017) keeps only the regions that raise the score of the class it explains:
its last step, a ReLU, removes negative evidence. For an image the model confidently calls negative no region
raises the positive score, so the positive-class map is empty (all zeros). :func:`is_blank` detects such maps,
and the gallery captions them and draws the map toward the predicted class beside them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..run_folder import RunFolder

__all__ = ["load_gallery", "is_blank", "embedded", "gallery_file", "GALLERY_FORMAT", "BLANK_RANGE"]

GALLERY_FORMAT = 1  # version of gallery.json; an older or newer file is rebuilt, not misread
BLANK_RANGE = 1e-6  # maps are scaled to [0, 1] per image, so an empty map is one with no range at all


def gallery_file(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "explain" / "gallery.json"


def is_blank(heatmap: np.ndarray) -> bool:
    """True for an empty map: no region carries evidence for the class (all zeros before scaling)."""
    return float(np.ptp(heatmap)) <= BLANK_RANGE


def embedded(gallery: dict, out: Path) -> dict:
    """The gallery with each item's PNG read back as bytes (for a page that embeds its figures)."""
    groups = [{**g, "items": [{**it, "data": (out / it["png"]).read_bytes(),
                               **({"slices_data": (out / it["slices_png"]).read_bytes()} if it.get("slices_png")
                                  else {})} for it in g["items"]]}
              for g in gallery["groups"]]
    return {**gallery, "groups": groups}


def load_gallery(run_dir: str | os.PathLike, split: str) -> dict | None:
    """The gallery of ``split`` with its figures, or None when it is missing, of another split or format,
    older than the split's predictions, or missing a figure."""
    folder = RunFolder(run_dir)
    path, preds = gallery_file(folder.path), folder.predictions(split)
    if not path.is_file() or not preds.is_file() or path.stat().st_mtime < preds.stat().st_mtime:
        return None
    try:
        gallery = json.loads(path.read_text())
    except ValueError:
        return None
    if gallery.get("format") != GALLERY_FORMAT or gallery.get("split") != split:
        return None
    out = path.parent
    if not all((out / f).is_file() for g in gallery["groups"] for it in g["items"]
               for f in (it["png"], it.get("slices_png")) if f):
        return None
    return embedded(gallery, out)

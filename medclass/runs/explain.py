"""Explain a finished run's predictions: ``medclass explain``.

Heatmap overlays (PNG, with a colour bar and the predicted probability) and the raw maps (``.npy``) for
image files; first-layer filters and a layer's activation maps. A volume run (a 3D model) explains NIfTI files,
DICOM series folders and multi-frame DICOM files: a 3D map (:func:`~medclass.interpret.volume.volume_heatmaps`)
drawn as axial, coronal and sagittal slices through its hottest voxel
(:func:`~medclass.reports.volume_figures.orthogonal_montage`), over the cube the model saw. The layer comes from
the model card (``cam_layer``), overridable by name. The report's gallery (the most confident true positives, false
positives, false negatives and true negatives of a scored split) is built by
:func:`medclass.runs.gallery.build_gallery`, re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..interpret import first_conv_filters, layer_activations
from ..interpret.volume import hottest_point
from ..reports import figures
from ..reports.gallery import is_blank
from ..reports.volume_figures import orthogonal_montage
from ..utils.io import atomic_write_bytes
from .gallery import build_gallery, heatmaps_for
from .predict import ImageLike, TrainedModel, load_run

__all__ = ["explain_images", "explain_filters", "explain_activations", "build_gallery"]


def _stem(item: Any, i: int) -> str:
    if not isinstance(item, (str, os.PathLike)):
        return f"image{i:03d}"
    name = Path(item).name
    return name[:-len(".nii.gz")] if name.lower().endswith(".nii.gz") else Path(item).stem


def explain_images(run: str | os.PathLike | TrainedModel, images: ImageLike | Sequence[ImageLike],
                   out_dir: str | os.PathLike, method: str = "gradcam", class_idx: int | None = None,
                   layer: str | None = None, *, skip_bad: bool = False) -> list[dict]:
    """Write ``<name>_<method>.png`` (overlay) and ``<name>_<method>.npy`` (map) per image; return a summary.

    Images are read through the run's input pipeline, as :meth:`TrainedModel.predict_proba` reads them. With
    ``skip_bad`` an image that cannot be used is left out, its row holding ``error`` instead of the files. For a
    volume run the PNG is a montage of three planes through the map's hottest voxel and the map is 3D.
    """
    model = run if isinstance(run, TrainedModel) else load_run(run)
    items = images if isinstance(images, (list, tuple)) else [images]
    prepared = model.prepare_many(items, skip_bad=skip_bad)
    batch = prepared.batch
    proba = model.predict_batch(batch)
    maps = heatmaps_for(model, batch, method, class_idx, layer) if len(batch) else []
    out = Path(out_dir)
    rows = [{"image": name, "error": reason} for _, name, reason in prepared.bad]
    for i, img, m, p in zip(prepared.kept, batch, maps, proba):
        item = items[i]
        c = int(p.argmax()) if class_idx is None else class_idx
        title = f"{method} for '{model.classes_[c]}' (p = {p[c]:.3f})"
        name = f"{_stem(item, i)}_{method.replace('+', 'p')}"
        if model.pipeline_.spatial_dims == 3:
            blank = is_blank(m)  # no voxel raises the class's score: show the centre, and say why
            point = tuple(s // 2 for s in m.shape) if blank else hottest_point(m)
            png = orthogonal_montage(img, m, title + (" (empty map: centre shown)" if blank else ""), point=point)
        else:
            png = figures.heatmap_overlay(img, m, title)
        atomic_write_bytes(out / f"{name}.png", png)
        np.save(out / f"{name}.npy", m.astype(np.float32))
        rows.append({"image": str(item) if isinstance(item, (str, os.PathLike)) else f"images[{i}]",
                     "class": model.classes_[c], "probability": float(p[c]), "overlay": str(out / f"{name}.png"),
                     "heatmap": str(out / f"{name}.npy")})
    return rows


def explain_filters(run: str | os.PathLike | TrainedModel, out_dir: str | os.PathLike) -> Path:
    model = run if isinstance(run, TrainedModel) else load_run(run)
    name, w = first_conv_filters(model.model)
    shape = "x".join(map(str, w.shape[2:]))
    if w.ndim == 5:  # 3D kernels (out, in, kd, kh, kw): their middle axial plane
        w = w[:, :, w.shape[2] // 2]
        shape += ", middle axial plane"
    path = Path(out_dir) / "filters.png"
    atomic_write_bytes(path, figures.filter_grid(w, f"first-layer filters ({name}: {w.shape[0]} x {w.shape[1]} x "
                                                    f"{shape})"))
    return path


def explain_activations(run: str | os.PathLike | TrainedModel, image: ImageLike, layer: str,
                        out_dir: str | os.PathLike) -> Path:
    model = run if isinstance(run, TrainedModel) else load_run(run)
    batch = model.prepare([image])
    acts = layer_activations(model.model, model.to_tensor(batch), layer)
    where = ""
    if acts.ndim == 4:  # a volume's maps (C, D, H, W): their middle axial slice
        acts, where = acts[:, acts.shape[1] // 2], ", middle axial slice"
    path = Path(out_dir) / f"{_stem(image, 0)}_activations_{layer.replace('.', '-')}.png"
    atomic_write_bytes(path, figures.activation_grid(acts, f"activations of {layer} ({acts.shape[0]} maps{where})"))
    return path

"""Explain a finished run's predictions: ``medclass explain``.

Heatmap overlays (PNG, with a colour bar and the predicted probability) and the raw maps (``.npy``) for
image files; first-layer filters and a layer's activation maps; and the gallery for the report: the most
confident true positives, false positives, false negatives and true negatives of a scored split.
The layer comes from the model card (``cam_layer``), overridable by name.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.build import build_dataset
from ..errors import ConfigError, RunFolderError
from ..interpret import compute_heatmaps, first_conv_filters, layer_activations
from ..models import get_model_card
from ..reports import figures
from ..run_folder import RunFolder, load_run_config, read_predictions
from ..utils.io import atomic_write_bytes, atomic_write_text
from .predict import ImageLike, TrainedModel, load_run

__all__ = ["explain_images", "explain_filters", "explain_activations", "build_gallery"]


def _maps(model: TrainedModel, batch: np.ndarray, method: str, class_idx: int | None,
          layer: str | None) -> np.ndarray:
    card = get_model_card(model.meta_["model"])
    if class_idx is not None and not 0 <= class_idx < len(model.classes_):
        raise ConfigError(f"--class {class_idx} is out of range: this model has classes 0..{len(model.classes_) - 1} "
                          f"({', '.join(model.classes_)}).")
    if method == "cam" and not card.supports_cam and layer is None:
        raise ConfigError(f"CAM needs a network that ends in global average pooling and one linear layer; "
                          f"{card.name} does not (its classifier is not applied to each position of "
                          f"{card.cam_layer}). Use --method gradcam, gradcam++ or occlusion.")
    return compute_heatmaps(model.model, model.to_tensor(batch), method, class_idx,
                            target_layer=layer or card.cam_layer, classifier=card.classifier)


def _stem(item: Any, i: int) -> str:
    return Path(item).stem if isinstance(item, (str, os.PathLike)) else f"image{i:03d}"


def explain_images(run: str | os.PathLike | TrainedModel, images: ImageLike | Sequence[ImageLike],
                   out_dir: str | os.PathLike, method: str = "gradcam", class_idx: int | None = None,
                   layer: str | None = None, *, skip_bad: bool = False) -> list[dict]:
    """Write ``<name>_<method>.png`` (overlay) and ``<name>_<method>.npy`` (map) per image; return a summary.

    Images are read through the run's input pipeline, as :meth:`TrainedModel.predict_proba` reads them. With
    ``skip_bad`` an image that cannot be used is left out, its row holding ``error`` instead of the files.
    """
    model = run if isinstance(run, TrainedModel) else load_run(run)
    items = images if isinstance(images, (list, tuple)) else [images]
    prepared = model.prepare_many(items, skip_bad=skip_bad)
    batch = prepared.batch
    proba = model.predict_batch(batch)
    maps = _maps(model, batch, method, class_idx, layer) if len(batch) else []
    out = Path(out_dir)
    rows = [{"image": name, "error": reason} for _, name, reason in prepared.bad]
    for i, img, m, p in zip(prepared.kept, batch, maps, proba):
        item = items[i]
        c = int(p.argmax()) if class_idx is None else class_idx
        title = f"{method} for '{model.classes_[c]}' (p = {p[c]:.3f})"
        name = f"{_stem(item, i)}_{method.replace('+', 'p')}"
        atomic_write_bytes(out / f"{name}.png", figures.heatmap_overlay(img, m, title))
        np.save(out / f"{name}.npy", m.astype(np.float32))
        rows.append({"image": str(item) if isinstance(item, (str, os.PathLike)) else f"images[{i}]",
                     "class": model.classes_[c], "probability": float(p[c]), "overlay": str(out / f"{name}.png"),
                     "heatmap": str(out / f"{name}.npy")})
    return rows


def explain_filters(run: str | os.PathLike | TrainedModel, out_dir: str | os.PathLike) -> Path:
    model = run if isinstance(run, TrainedModel) else load_run(run)
    name, w = first_conv_filters(model.model)
    path = Path(out_dir) / "filters.png"
    atomic_write_bytes(path, figures.filter_grid(w, f"first-layer filters ({name}: {w.shape[0]} x {w.shape[1]} x "
                                                    f"{'x'.join(map(str, w.shape[2:]))})"))
    return path


def explain_activations(run: str | os.PathLike | TrainedModel, image: ImageLike, layer: str,
                        out_dir: str | os.PathLike) -> Path:
    model = run if isinstance(run, TrainedModel) else load_run(run)
    batch = model.prepare([image])
    acts = layer_activations(model.model, model.to_tensor(batch), layer)
    path = Path(out_dir) / f"{_stem(image, 0)}_activations_{layer.replace('.', '-')}.png"
    atomic_write_bytes(path, figures.activation_grid(acts, f"activations of {layer} ({acts.shape[0]} maps)"))
    return path


def build_gallery(run_dir: str | os.PathLike, split: str = "test", per_group: int = 4, method: str = "gradcam",
                  data_dir: str | None = None) -> Path:
    """Overlays of the most confident TP, FP, FN and TN of a scored split; ``explain/gallery.html`` for the report.

    Binary tasks use the positive class (e.g. malignant); other tasks show the most confident correct and
    wrong predictions. Figures are embedded, so the report stays one self-contained file.
    """
    folder = RunFolder(run_dir).require_complete()
    if not folder.predictions(split).is_file():
        raise RunFolderError(f"Run '{folder.path}' has no {split} predictions yet. Score it first: "
                             f"medclass evaluate {folder.path} --split {split}")
    cfg = load_run_config(folder, data_dir)
    ds = build_dataset(cfg.data, run_dir=folder.path)
    images = ds.split(split).images
    y, p, _ = read_predictions(folder.predictions(split), values=ds.task == "regression")
    model = load_run(folder.path)
    groups = _groups(y, p, ds.task, ds.positive_label, cfg.eval.threshold, per_group)
    # one output score drives every prediction of a regression or CORAL model (CORAL's grades differ only by
    # fixed biases), so its heatmap shows what raises the predicted value or grade
    shared = 0 if ds.task == "regression" or model.meta_.get("head") == "coral" else None
    out = folder.path / "explain" / "gallery"
    parts = [f"<p class='muted'>{_e(method)} heatmaps ({_e(get_model_card(model.meta_['model']).cam_layer)} layer) "
             f"of the most confident cases of the {split} split in each group; red = most important for the "
             f"class shown.</p>"]
    for title, idx, cls in groups:
        parts.append(f"<h3>{_e(title)} ({len(idx)})</h3>")
        if not len(idx):
            parts.append("<p class='muted'>none</p>")
            continue
        maps = _maps(model, images[idx], method, cls if shared is None else shared, None)
        for i, m in zip(idx, maps):
            c = int(p[i].argmax()) if cls is None else cls
            caption = (f"#{i}: predicted {p[i, 0]:.3g}, true {y[i]:.3g}" if ds.task == "regression" else
                       f"#{i}: p({ds.labels[c]}) = {p[i, c]:.3f}")
            png = figures.heatmap_overlay(images[i], m, caption)
            atomic_write_bytes(out / f"{split}_{i}.png", png)
            parts.append(f"<img style='max-width:32%' alt='{split} image {i}' "
                         f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    path = folder.path / "explain" / "gallery.html"
    atomic_write_text(path, "\n".join(parts))
    return path


def _e(x: Any) -> str:
    return html.escape(str(x))


def _groups(y, p, task, positive_label, threshold, k) -> list[tuple[str, np.ndarray, int]]:
    if task == "binary":
        pos = 1 if positive_label is None else positive_label
        score = p[:, pos]
        pred_pos = (p[:, 1] > threshold) == (pos == 1)
        truth = y == pos
        order = np.argsort(-score)  # most confidently positive first
        top = lambda mask, rev=False: (order[::-1] if rev else order)[mask[(order[::-1] if rev else order)]][:k]  # noqa: E731
        return [("true positives", top(truth & pred_pos), pos), ("false positives", top(~truth & pred_pos), pos),
                ("false negatives", top(truth & ~pred_pos, rev=True), pos),
                ("true negatives", top(~truth & ~pred_pos, rev=True), pos)]
    if task in ("multilabel", "multitask"):
        raise ConfigError(f"The gallery covers single-label tasks; for {task} runs explain images one output at a "
                          f"time with --class.")
    if task == "regression":
        err = np.abs(p[:, 0] - y)
        order = np.argsort(err)
        return [("most accurate predictions", order[:k], 0), ("largest errors", order[::-1][:k], 0)]
    pred = p.argmax(1)
    conf = p.max(1)
    order = np.argsort(-conf)
    right = order[(pred == y)[order]][:k]
    wrong = order[(pred != y)[order]][:k]
    return [("most confident correct", right, None), ("most confident wrong", wrong, None)]

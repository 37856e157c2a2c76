"""Build the heatmap gallery of a scored split: where the model looked for its most confident TP, FP, FN and TN.

:func:`build_gallery` writes, under ``<run>/explain/``:

- ``gallery/<split>_<i>.png``: the image and its heatmap(s), with a colour bar;
- ``gallery.json``: groups, captions and which maps are empty: what ``report.html`` reads and embeds;
- ``gallery.html``: the same gallery as a self-contained page of its own.

Grad-CAM (Selvaraju et al., ICCV 2017) keeps only the regions that raise the score of the class it
explains: its last step, a ReLU, removes negative evidence. For an image the model confidently calls
negative no region raises the positive score, so the positive-class map is empty (all zeros). Such maps
are detected and captioned, and for every image predicted as another class than the one explained, the
map toward the predicted class is drawn beside it. The report reads the result with
:func:`medclass.reports.gallery.load_gallery`.

Volumes (a 3D model's run) are explained by :func:`medclass.interpret.volume.volume_heatmaps`, and each
volume is drawn as axial, coronal and sagittal slices through the hottest point of its map
(:func:`medclass.reports.volume_figures.orthogonal_montage`): the map toward the explained class, or toward the
predicted class when the first is empty.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import replace
from ..data.build import build_dataset
from ..errors import ConfigError, RunFolderError
from ..evaluation.kinds import get_kind
from ..interpret import compute_heatmaps
from ..interpret.volume import slice_weights, volume_heatmaps
from ..models import get_model_card
from ..reports import figures
from ..reports._render import render
from ..reports.gallery import GALLERY_FORMAT, embedded, is_blank
from ..reports.volume_figures import orthogonal_montage, slice_weights_figure
from ..reports.wording import display_label
from ..run_folder import RunFolder, load_run_config, read_predictions
from ..utils.io import atomic_write_bytes, atomic_write_text
from .predict import TrainedModel, load_run

__all__ = ["build_gallery", "heatmaps_for"]
_METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "cam": "CAM", "occlusion": "occlusion"}


def heatmaps_for(model: TrainedModel, batch: np.ndarray, method: str, class_idx: int | None,
                 layer: str | None) -> np.ndarray:
    """Heatmaps of a loaded run for a batch of prepared images, the layer taken from the model card."""
    card = get_model_card(model.meta_["model"])
    if class_idx is not None and not 0 <= class_idx < len(model.classes_):
        raise ConfigError(f"--class {class_idx} is out of range: this model has classes 0..{len(model.classes_) - 1} "
                          f"({', '.join(model.classes_)}).")
    if method == "cam" and not card.supports_cam and layer is None:
        raise ConfigError(f"CAM needs a network that ends in global average pooling and one linear layer; "
                          f"{card.name} does not (its classifier is not applied to each position of "
                          f"{card.cam_layer}). Use --method gradcam, gradcam++ or occlusion.")
    if card.spatial_dims == 3:
        return volume_heatmaps(model.model, model.to_tensor(batch), card, method, class_idx, target_layer=layer)
    return compute_heatmaps(model.model, model.to_tensor(batch), method, class_idx,
                            target_layer=layer or card.cam_layer, classifier=card.classifier)


def build_gallery(run_dir: str | os.PathLike, split: str = "test", per_group: int = 4, method: str = "gradcam",
                  data_dir: str | None = None, download: bool = True) -> Path:
    """Overlays of the most confident TP, FP, FN and TN of a scored split; returns ``explain/gallery.html``.

    Binary tasks explain the positive class (e.g. malignant), and for the images predicted negative (FN,
    TN) also the negative class; other tasks show the most confident correct and wrong predictions.

    Args:
        run_dir: a finished run folder whose ``split`` has been scored (``predictions/<split>.csv``).
        split: val or test.
        per_group: images per group.
        method: gradcam, gradcam++, cam or occlusion.
        data_dir: where the dataset files are, when not where training found them.
        download: allow downloading a missing MedMNIST file (``medclass report`` passes False).

    Raises:
        RunFolderError: the split has not been scored.
        ConfigError: a multi-label or multi-task run (explain those one output at a time).
    """
    folder = RunFolder(run_dir).require_complete()
    if not folder.predictions(split).is_file():
        raise RunFolderError(f"Run '{folder.path}' has no {split} predictions yet. Score it first: "
                             f"medclass evaluate {folder.path} --split {split}")
    cfg = load_run_config(folder, data_dir)
    if cfg.data.task and not get_kind(cfg.data.task).single_label:
        raise ConfigError(_single_label_only(cfg.data.task))
    ds = build_dataset(replace(cfg.data, download=download), run_dir=folder.path)
    if ds.views:
        raise ConfigError(f"Run '{folder.path}' classifies cases of {len(ds.views)} images; heatmap galleries are "
                          f"built for single images and volumes only (not yet for cases).")
    kind = ds.kind
    if not kind.single_label:
        raise ConfigError(_single_label_only(ds.task))
    images = ds.split(split).images
    y, p, _ = read_predictions(folder.predictions(split), values=kind.values)
    model = load_run(folder.path)
    labels = [display_label(c) for c in ds.labels]
    groups = _groups(y, p, kind, ds.positive_label, cfg.eval.threshold, per_group)
    # the decisions the metrics count (binary: MedMNIST's threshold rule); a regression has values, not classes
    predicted = None if kind.values else kind.decide(p, cfg.eval.threshold)
    # one output score drives every prediction of a regression or CORAL model (CORAL's grades differ only by
    # fixed biases), so its heatmap shows what raises the predicted value or grade
    shared = kind.values or model.meta_.get("head") == "coral"
    name = _METHOD_NAMES.get(method, method)
    out = folder.path / "explain"
    gallery: dict[str, Any] = {
        "format": GALLERY_FORMAT, "split": split, "method": method, "method_name": name,
        "layer": get_model_card(model.meta_["model"]).cam_layer, "task": ds.task, "size": ds.size,
        "shared_score": shared, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "groups": []}
    for title, idx, cls in groups:
        group: dict[str, Any] = {"title": title, "explained": None if cls is None or shared else labels[cls],
                                 "items": []}
        gallery["groups"].append(group)
        if not len(idx):
            continue
        main = heatmaps_for(model, images[idx], method, 0 if shared else cls, None)
        # a slice-pooling model also shows each slice's weight in its prediction (attention, 1/D, or max share)
        weights = (slice_weights(model.model, model.to_tensor(images[idx]))
                   if callable(getattr(model.model, "forward_with_attention", None)) else [None] * len(idx))
        other = {}  # image -> map toward the predicted class, when another class is explained
        if not shared and cls is not None:
            for c in np.unique(predicted[idx]):
                sel = idx[predicted[idx] == c]
                if c != cls:
                    other.update(zip(sel.tolist(), heatmaps_for(model, images[sel], method, int(c), None)))
        for i, m, w in zip(idx.tolist(), main, weights):
            item = _draw(out, split, i, images[i], m, other.get(i), y, p, kind, labels, cls, predicted, name, shared)
            if w is not None:
                rel = f"gallery/{split}_{i}_slices.png"
                atomic_write_bytes(out / rel, slice_weights_figure(images[i], w, f"#{i}: each slice's weight in "
                                                                                  f"the pooled prediction"))
                item["slices_png"] = rel
            group["items"].append(item)
    for group in gallery["groups"]:
        group["also_predicted"] = any(len(it["maps"]) > 1 for it in group["items"])
    gallery["blank_maps"] = sum(mp["blank"] for g in gallery["groups"] for it in g["items"] for mp in it["maps"])
    atomic_write_text(out / "gallery.json", json.dumps(gallery, indent=1))
    path = out / "gallery.html"
    atomic_write_text(path, render("gallery_page.html", gallery=embedded(gallery, out), split=split,
                                   run=folder.path.name))
    return path


def _single_label_only(task: str) -> str:
    return (f"The gallery covers single-label tasks; for {task} runs explain images one output at a time: "
            f"medclass explain RUN IMAGE --class K.")


def _draw(out: Path, split: str, i: int, image, m, m_other, y, p, kind, labels, cls, predicted, name,
          shared) -> dict:
    if kind.values:
        caption = f"#{i}: predicted {p[i, 0]:.3g}, true {y[i]:.3g}"
        panels = [(m, "a higher prediction", f"{name} toward\na higher prediction", is_blank(m))]
    else:
        c = int(predicted[i]) if cls is None or shared else cls
        caption = f"#{i}: p({labels[c]}) = {p[i, c]:.3f}"
        if int(y[i]) != int(predicted[i]):
            caption += f"; predicted {labels[int(predicted[i])]}, true {labels[int(y[i])]}"
        else:
            caption += f"; true {labels[int(y[i])]}"
        toward = "the predicted grade" if shared else labels[c]
        panels = [(m, toward, f"{name} toward\n{toward}", is_blank(m))]
        if m_other is not None:
            toward = labels[int(predicted[i])]
            panels.append((m_other, toward, f"{name} toward\n{toward} (predicted)", is_blank(m_other)))
    if np.ndim(image) == 4:  # a volume (D, H, W, C): one montage through the hottest point of one map
        panels = [next((pn for pn in panels if not pn[3]), panels[0])]
        hm, _, title, blank = panels[0]
        png = orthogonal_montage(image, hm, f"#{i}: {title.replace(chr(10), ' ')}",
                                 point=tuple(s // 2 for s in hm.shape) if blank else None)
    else:
        png = figures.heatmap_panels(image, [(hm, title, blank) for hm, _, title, blank in panels])
    rel = f"gallery/{split}_{i}.png"
    atomic_write_bytes(out / rel, png)
    maps = [{"toward": toward, "blank": blank} for _, toward, _, blank in panels]
    return {"index": i, "png": rel, "caption": caption, "maps": maps}


def _groups(y, p, kind, positive_label, threshold, k) -> list[tuple[str, np.ndarray, int | None]]:
    if kind.has_positive_class:
        pos = 1 if positive_label is None else positive_label
        score = p[:, pos]
        pred_pos = (p[:, 1] > threshold) == (pos == 1)
        truth = y == pos
        order = np.argsort(-score, kind="stable")  # most confidently positive first
        rev = order[::-1]
        return [("true positives", order[(truth & pred_pos)[order]][:k], pos),
                ("false positives", order[(~truth & pred_pos)[order]][:k], pos),
                ("false negatives", rev[(truth & ~pred_pos)[rev]][:k], pos),
                ("true negatives", rev[(~truth & ~pred_pos)[rev]][:k], pos)]
    if kind.values:
        err = np.abs(p[:, 0] - y)
        order = np.argsort(err, kind="stable")
        return [("most accurate predictions", order[:k], 0), ("largest errors", order[::-1][:k], 0)]
    pred = p.argmax(1)
    order = np.argsort(-p.max(1), kind="stable")
    return [("most confident correct", order[(pred == y)[order]][:k], None),
            ("most confident wrong", order[(pred != y)[order]][:k], None)]

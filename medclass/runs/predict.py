"""Use a finished run on new images: ``medclass predict`` and ``medclass.load_run(...).predict_proba``.

Every image goes through the run's own :class:`~medclass.data.pipeline.InputPipeline` (read at the trained
frame/slice, windows and presets, resize, channels, normalisation), the one object training used, so a model
sees new patients' images exactly as it saw its training images. Files may be PNG, JPEG, TIFF (8/16 bit),
DICOM or NIfTI; :func:`expand_inputs` also takes folders and manifest CSVs.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..data.pipeline import InputPipeline
from ..errors import ConfigError, DataError
from ..evaluation.taxonomy import parse_taxonomy
from ..models import build_model, load_weights
from ..run_folder import RunFolder
from ..tasks import Task, task_from_meta
from ..training.inference import predict_proba
from ..utils.text import natural_key
from .volumes import use_channels_last

__all__ = ["Predictor", "TrainedModel", "Prepared", "load_run", "prepare_images", "expand_inputs",
           "read_predict_manifest"]

log = logging.getLogger(__name__)

ImageLike = str | os.PathLike | np.ndarray | Image.Image


@dataclass
class Prepared:
    """Images made ready for the network by :meth:`TrainedModel.prepare_many`.

    Attributes:
        batch: uint8 ``(n_kept, size, size, C)``.
        kept: index (in the input order) of each image in ``batch``.
        names: what each input is called in messages and outputs (the file path, or ``images[i]``).
        bad: ``(index, name, reason)`` of every input that could not be used.
        warnings: files unlike the training files (another DICOM modality, photometric interpretation...).
    """

    batch: np.ndarray
    kept: list[int]
    names: list[str]
    bad: list[tuple[int, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Predictor:
    """What a trained model and an exported one share: inputs through ``pipeline_``, decisions through the task.

    A subclass sets ``pipeline_``, ``classes_``, ``threshold`` and ``_task`` and implements :meth:`predict_batch`.
    """

    pipeline_: InputPipeline
    classes_: list[str]
    threshold: float
    _task: Task

    def prepare_many(self, images: ImageLike | Sequence[ImageLike], *, skip_bad: bool = False,
                     progress: Callable[[int, int], None] | None = None) -> Prepared:
        """Files, PIL images or arrays as the uint8 batch the model expects, through the run's pipeline.

        A 4-D array is a batch ``(N, H, W, C)``; a 3-D array with a last axis of 1, 3 or 4 one image; any other
        3-D array a batch of grey images ``(N, H, W)``. For a volume model, a 3-D array (or 4-D with a last axis
        of 1 or 3) is one volume, a 5-D array or any other 4-D array a batch. An input that cannot be used is a
        :class:`DataError` naming it, or with ``skip_bad`` is left out and listed in :attr:`Prepared.bad`.
        """
        return prepare_images(self.pipeline_, images, skip_bad=skip_bad, progress=progress)

    def prepare(self, images: ImageLike | Sequence[ImageLike]) -> np.ndarray:
        """The uint8 ``(N, size, size, C)`` batch of ``images`` (see :meth:`prepare_many`); any bad input raises."""
        return self.prepare_many(images).batch

    def predict_batch(self, batch: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Probabilities of a prepared uint8 batch."""
        raise NotImplementedError

    def predict_proba(self, images: ImageLike | Sequence[ImageLike], batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``(n_images, n_classes)`` (per-label probabilities for multi-label; the predicted
        values ``(n_images, 1)`` for regression; each head's probabilities side by side for multi-task)."""
        return self.predict_batch(self.prepare(images), batch_size)

    def predict(self, images: ImageLike | Sequence[ImageLike]) -> np.ndarray:
        """Predicted class indices (binary: class 1 when its probability > threshold), or 0/1 per label."""
        return self.decide(self.predict_proba(images))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Turn probabilities from :meth:`predict_proba` into decisions with the run's threshold."""
        return self._task.decide(proba, self.threshold)

    def describe(self, decisions: np.ndarray) -> list[str]:
        """Each decision of :meth:`decide` in words: class name, ``;``-joined labels, value, or one class per head."""
        return self._task.describe(decisions, self.classes_)

    @property
    def num_outputs_(self) -> int:
        return len(self._task.kind.output_names(self.classes_))


class TrainedModel(Predictor):
    """A trained network with its input pipeline and task, ready to predict (scikit-learn style).

    Attributes:
        classes_: class (or label) names, in output order.
        task_: binary, multiclass, ordinal, multilabel, regression or multitask.
        input_size_, in_chans_: the size and channels images are converted to.
        pipeline_: the :class:`~medclass.data.pipeline.InputPipeline` every input goes through.
        meta_: everything the checkpoint records (model, config, epoch chosen, validation AUC).
    """

    def __init__(self, model: torch.nn.Module, meta: dict[str, Any], device: torch.device | str = "cpu",
                 tta: bool = False, threshold: float = 0.5, channels_last: bool = False):
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.pipeline_ = InputPipeline.from_checkpoint_meta(meta)
        self.model = use_channels_last(model.eval().to(self.device), channels_last, self.pipeline_.spatial_dims)
        self.meta_ = meta
        self.tta = tta
        self.threshold = threshold
        self.classes_ = list(meta["labels"])
        self.task_ = meta["task"]
        self.input_size_ = int(meta["input_size"])
        self.in_chans_ = int(meta["in_chans"])
        self._task = task_from_meta(meta)

    # --- inputs -------------------------------------------------------------------------------------

    def to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        """A uint8 batch from :meth:`prepare` as the normalised float tensor the network eats."""
        return self.pipeline_.to_tensor(batch, self.device, self.channels_last)

    # --- predictions ----------------------------------------------------------------------------------

    def predict_batch(self, batch: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Probabilities of a prepared uint8 batch (the same forward pass and TTA as evaluation)."""
        batches = ((self.to_tensor(batch[i:i + batch_size]), torch.zeros(len(batch[i:i + batch_size])))
                   for i in range(0, len(batch), batch_size))
        probs, _, _ = predict_proba(self.model, batches, self._task, tta=self.tta)
        return probs if len(batch) else np.zeros((0, self.num_outputs_), np.float32)

    def predict_coarse_proba(self, images: ImageLike | Sequence[ImageLike]) -> tuple[list[str], np.ndarray]:
        """With a class taxonomy (``eval.taxonomy``): the coarse class names and their probabilities, each the sum
        of its fine classes' probabilities."""
        entries = self.meta_.get("config", {}).get("eval", {}).get("taxonomy") or []
        if not entries:
            raise ConfigError("This run has no class taxonomy (eval.taxonomy); coarse classes are not defined.")
        tax = parse_taxonomy(entries, self.classes_)
        return list(tax.coarse), tax.probabilities(self.predict_proba(images))

    def __repr__(self) -> str:
        return (f"TrainedModel({self.meta_['model']}, task={self.task_}, classes={self.classes_}, "
                f"input={self.pipeline_.describe()})")


def prepare_images(pipeline: InputPipeline, images: ImageLike | Sequence[ImageLike], *, skip_bad: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> Prepared:
    """Files, PIL images or arrays as the uint8 batch a model expects, through ``pipeline`` (steps 1-2).

    The one implementation behind :meth:`TrainedModel.prepare_many` and the exported models of
    :mod:`medclass.runs.export`, so both prepare an input identically.
    """
    items = _as_cases(images, pipeline.views) if pipeline.views else _as_items(images, pipeline.spatial_dims)
    out, kept, bad, warnings = [], [], [], []

    def one(item: Any, name: str) -> np.ndarray:
        if isinstance(item, (str, os.PathLike)):
            img, warn = pipeline.load(item)
            warnings.extend(warn)
            return img
        return pipeline.from_array(item, name)

    for i, (item, name) in enumerate(items):
        try:
            if pipeline.views:  # a case: its views prepared one by one, stacked (V, H, W, C)
                img = np.stack([one(v, f"{name} view {view!r}") for v, view in zip(item, pipeline.views)])
            else:
                img = one(item, name)
        except DataError as e:
            if not skip_bad:
                raise
            bad.append((i, name, str(e)))
        else:
            out.append(img)
            kept.append(i)
        if progress is not None:
            progress(i + 1, len(items))
    size = pipeline.size
    empty = (0, *((len(pipeline.views),) if pipeline.views else ()), *(size,) * pipeline.spatial_dims,
             pipeline.channels or 1)
    batch = np.stack(out) if out else np.zeros(empty, np.uint8)
    for w in warnings:
        log.warning("%s", w)
    return Prepared(batch, kept, [n for _, n in items], bad, warnings)


def _as_cases(cases: Any, views: tuple[str, ...]) -> list[tuple[list[Any], str]]:
    """Cases for a model of several views: a uint8 array ``(N, V, H, W, C)`` (or one case ``(V, H, W[, C])``), one
    case as a dict ``{view: image}`` or a list of its ``V`` images in view order, or a list of such cases."""
    how = (f"This model classifies cases of {len(views)} images ({', '.join(views)}): give a case as a dict "
           f"{{view: file}} or a list of its {len(views)} files in that order, a list of such cases, or a uint8 array "
           f"(N, {len(views)}, H, W, C); many cases with labels: medclass evaluate RUN --manifest cases.csv")
    if isinstance(cases, np.ndarray):
        if cases.ndim in (3, 4) and len(cases) == len(views):
            cases = cases[None]
        if cases.ndim in (4, 5) and cases.shape[1] == len(views):
            return [(list(c), f"cases[{i}]") for i, c in enumerate(cases)]
        raise DataError(f"Cannot interpret an array of shape {cases.shape} as cases. {how}.")
    if isinstance(cases, dict) or (isinstance(cases, (list, tuple)) and cases
                                   and not isinstance(cases[0], (dict, list, tuple))):
        cases = [cases]
    if isinstance(cases, (str, os.PathLike, Image.Image)) or not cases:
        raise DataError(f"{how}.")
    out = []
    for i, case in enumerate(cases):
        if isinstance(case, dict):
            if set(case) != set(views):
                raise DataError(f"cases[{i}] has the views {', '.join(map(str, case))}; the model takes "
                                f"{', '.join(views)}.")
            case = [case[v] for v in views]
        if not isinstance(case, (list, tuple)) or len(case) != len(views):
            raise DataError(f"cases[{i}] is not a case of {len(views)} images. {how}.")
        out.append((list(case), f"cases[{i}]"))
    return out


def _as_items(images: ImageLike | Sequence[ImageLike], spatial_dims: int = 2) -> list[tuple[Any, str]]:
    if isinstance(images, (str, os.PathLike, Image.Image)):
        images = [images]
    if isinstance(images, np.ndarray) and spatial_dims == 3:  # (N, D, H, W[, C]) a batch, (D, H, W) one volume
        if images.ndim == 5 or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
            return [(v, f"images[{i}]") for i, v in enumerate(images)]
        if images.ndim in (3, 4):
            return [(images, "volume")]
        raise DataError(f"Cannot interpret an array of shape {images.shape} as volumes: give (D, H, W), "
                        f"(D, H, W, C) or a batch (N, D, H, W[, C]).")
    if isinstance(images, np.ndarray):
        if images.ndim == 4 or (images.ndim == 3 and images.shape[-1] not in (1, 3, 4)):
            return [(im, f"images[{i}]") for i, im in enumerate(images)]
        if images.ndim in (2, 3):
            return [(images, "image")]
        raise DataError(f"Cannot interpret an array of shape {images.shape} as images.")
    items = list(images)
    if not items:
        raise DataError("No images were given to predict.")
    return [(im, str(im) if isinstance(im, (str, os.PathLike)) else f"images[{i}]") for i, im in enumerate(items)]


def load_run(run_dir: str | os.PathLike, device: str = "cpu", checkpoint: str = "best") -> TrainedModel:
    """Load the validation-chosen checkpoint of a finished run (``checkpoint="last"``: the final epoch's).

    Example:
        >>> model = load_run("runs/b0")  # doctest: +SKIP
        >>> model.predict_proba(["a.png", "b.dcm"])  # doctest: +SKIP
        array([[0.12, 0.88], [0.91, 0.09]], dtype=float32)
    """
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    folder = RunFolder(run_dir).require_complete()
    state, meta = load_weights(folder.best_weights if checkpoint == "best" else folder.last_weights)
    if "pipeline" not in meta:
        log.warning("%s was trained by an older medclass that did not save its input pipeline; it is re-created "
                    "from the run's configuration (what its training used)", folder.path)
    model = build_model(meta)
    model.load_state_dict(state)
    cfg = meta.get("config", {})
    ev = cfg.get("eval", {})
    return TrainedModel(model, meta, device=device, tta=bool(ev.get("tta", False)),
                        threshold=float(ev.get("threshold", 0.5)),
                        channels_last=bool(cfg.get("train", {}).get("channels_last", False)))


# --- what `medclass predict` is given: files, folders, manifests ------------------------------------------


def expand_inputs(inputs: Iterable[str | os.PathLike], *, recursive: bool = False,
                  volumes: bool = False) -> list[Path]:
    """The image files behind ``inputs``: files as they are, a folder's files (in natural order; with
    ``recursive`` every file below it). Hidden files and ``.csv``/``.txt``/``.json`` files in folders are
    skipped; whether a file is an image is decided when it is read (DICOM files often have no suffix).

    With ``volumes`` (a 3D model's run) a folder that holds files but no NIfTI file is one input, a DICOM series;
    any other folder gives its NIfTI files and its sub-folders that are series (with ``recursive``, those found
    further down too).
    """
    if volumes:
        return _expand_volumes(inputs, recursive)
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            files = [f for f in found if f.is_file()
                     and not any(part.startswith(".") for part in f.relative_to(p).parts)
                     and f.suffix.lower() not in _NOT_IMAGES]
            if not files:
                hint = "" if recursive else " (its sub-folders are not searched without --recursive)"
                raise DataError(f"Folder '{p}' holds no files to predict{hint}.")
            out += sorted(files, key=lambda f: natural_key(str(f)))
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"'{p}' does not exist. Give image files, folders or a manifest CSV.")
    if not out:
        raise DataError("No images were given to predict.")
    return out


_NOT_IMAGES = (".csv", ".txt", ".json", ".md", ".yaml")


def _is_nifti(p: Path) -> bool:
    return p.name.lower().endswith((".nii", ".nii.gz"))


def _expand_volumes(inputs: Iterable[str | os.PathLike], recursive: bool) -> list[Path]:
    """:func:`expand_inputs` for volumes: files, series folders, and the NIfTI files and series inside folders."""
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            if _is_series(p):
                out.append(p)
                continue
            found = _volumes_in(p, recursive)
            if not found:
                hint = "" if recursive else " (deeper sub-folders are not searched without --recursive)"
                raise DataError(f"Folder '{p}' holds no volume: no NIfTI file and no folder of DICOM slices{hint}.")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"'{p}' does not exist. Give NIfTI files, DICOM series folders or a manifest CSV.")
    return out


def _visible(folder: Path) -> list[Path]:
    return sorted((f for f in folder.iterdir() if not f.name.startswith(".")), key=lambda f: natural_key(str(f)))


def _is_series(folder: Path) -> bool:
    """A folder holding files, none of them NIfTI: a DICOM series (the reader says what is wrong with it)."""
    files = [f for f in _visible(folder) if f.is_file() and f.suffix.lower() not in _NOT_IMAGES]
    return bool(files) and not any(_is_nifti(f) for f in files)


def _volumes_in(folder: Path, recursive: bool) -> list[Path]:
    found: list[Path] = []
    for f in _visible(folder):
        if (f.is_file() and _is_nifti(f)) or (f.is_dir() and _is_series(f)):
            found.append(f)
        elif f.is_dir() and recursive:
            found += _volumes_in(f, recursive)
    return found


def read_predict_manifest(path: str | os.PathLike, image_root: str | os.PathLike | None = None, *,
                          path_column: str = "path", label_column: str | None = None,
                          classes: Sequence[str] = ()) -> tuple[list[Path], np.ndarray | None, dict[str, list[str]]]:
    """A manifest CSV for prediction: ``(files, labels, columns)``.

    ``path`` is relative to ``image_root`` (default: the CSV's folder). When the run's label column is present,
    its values are mapped to the run's class indices (``labels``), so the output can be graded; other columns
    are carried into the output unchanged.
    """
    src = Path(path)
    root = Path(image_root) if image_root else src.parent
    try:
        with open(src, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"Manifest '{src}' could not be read ({e}).") from None
    if not rows or path_column not in rows[0]:
        raise DataError(f"Manifest '{src}' needs a '{path_column}' column and at least one row.")
    files = [root / (r[path_column] or "").strip() for r in rows]
    labels = None
    if label_column and label_column in rows[0] and classes:
        index = {c: k for k, c in enumerate(classes)}
        unknown = sorted({(r[label_column] or "").strip() for r in rows} - set(index))
        if unknown:
            raise DataError(f"Manifest '{src}': the label(s) {', '.join(map(repr, unknown[:5]))} in column "
                            f"'{label_column}' are not classes of this run ({', '.join(classes)}).")
        labels = np.array([index[(r[label_column] or "").strip()] for r in rows], np.int64)
    columns = {c: [(r[c] or "") for r in rows] for c in rows[0] if c not in (path_column, label_column)}
    return files, labels, columns


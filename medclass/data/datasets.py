"""Image arrays with their labels and facts: what every data source is turned into before training.

A :class:`ImageDataset` holds one :class:`ArraySplit` per split (``train``, ``val``, ``test``), each a
``uint8`` array of shape ``(N, H, W, C)`` plus integer labels, and the facts a model and a report need
(task, label names, channels, licence, citation). Volumes (the MedMNIST 3D subsets, ``spatial_dims=3``) are
``(N, D, H, W, C)``: the channel axis stays last, as for images. Cases of several images (a manifest's
``case_id``, :mod:`medclass.data.cases`) are ``(N, V, H, W, C)`` with the view names in ``views``. The arrays
stay ``uint8`` in memory, four times smaller than float32; batches are converted to float only when they are
drawn (see :mod:`medclass.data.loader`).
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..evaluation.kinds import TaskKind, get_kind
from .download import ProgressFn, fetch_medmnist
from .medmnist import get_info
from .pipeline import InputPipeline

__all__ = ["ArraySplit", "ImageDataset", "load_dataset", "load_npz", "SPLITS"]

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
TASKS = ("binary", "multiclass", "multilabel", "ordinal")


@dataclass(frozen=True)
class ArraySplit:
    """One split: ``images`` uint8 ``(N, H, W, C)`` (volumes: ``(N, D, H, W, C)``) and ``labels`` int64 ``(N,)``
    or ``(N, L)`` for multi-label.

    ``meta`` holds per-image facts from a manifest as string arrays of length N: ``path``, ``row`` (the CSV
    row), ``patient_id`` and any metadata columns (site, sex, ...), used for patient-level intervals and
    subgroup results. MedMNIST splits have none.
    """

    images: np.ndarray
    labels: np.ndarray
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class ImageDataset:
    """A dataset ready to train on: splits plus the facts about it."""

    name: str
    task: str
    labels: tuple[str, ...]
    channels: int
    size: int
    splits: dict[str, ArraySplit]
    license: str = "unknown"
    citation: str = ""
    source: str = ""
    positive_label: int | None = None
    path: str = ""
    files: dict[str, str] = field(default_factory=dict)  # text files for the run folder (split.csv, leakage.json)
    facts: dict = field(default_factory=dict)  # extra facts for dataset.json (preprocessing, leakage summary)
    pipeline: InputPipeline | None = None  # how a file becomes one of these images (None: size/channels only)
    spatial_dims: int = 2  # 2: images (N, H, W, C); 3: volumes (N, D, H, W, C)
    views: tuple[str, ...] = ()  # cases of several images (N, V, H, W, C), in this view order (medclass.data.cases)

    def __post_init__(self):
        if self.pipeline is None:  # published arrays: files are only cropped, resized and converted to them
            object.__setattr__(self, "pipeline", InputPipeline(size=self.size, channels=self.channels,
                                                               spatial_dims=self.spatial_dims))

    @property
    def unit(self) -> str:
        """What one sample is called in reports: ``image``, ``volume`` or ``case`` (several images)."""
        return "case" if self.views else "volume" if self.spatial_dims == 3 else "image"

    @property
    def kind(self) -> TaskKind:
        """The task kind (:mod:`medclass.evaluation.kinds`): how the labels are counted, decided and scored."""
        return get_kind(self.task, heads=self.facts.get("heads", ()))

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> ArraySplit:
        if name not in self.splits:
            raise ConfigError(f"Dataset {self.name!r} has no {name!r} split. Available: {', '.join(self.splits)}.")
        return self.splits[name]

    def describe(self) -> dict:
        """Facts about the dataset for run folders and reports (no pixel data)."""
        kind = self.kind
        counts = {name: {"n": len(s), **kind.class_counts(s.labels, self.num_classes)}
                  for name, s in self.splits.items()}
        return {"name": self.name, "task": self.task, "labels": list(self.labels), "channels": self.channels,
                "size": self.size, "license": self.license, "citation": self.citation, "source": self.source,
                "positive_label": self.positive_label, "path": self.path, "splits": counts,
                **({"spatial_dims": 3, "unit": "volume"} if self.spatial_dims == 3 else {}),
                **({"unit": "case", "views": list(self.views)} if self.views else {}), **self.facts}


def load_dataset(name: str, size: int = 28, data_dir: str | os.PathLike | None = None, download: bool = True,
                 progress: ProgressFn | None = None) -> ImageDataset:
    """Load a MedMNIST subset by name (verified by MD5, downloaded if missing) or an .npz file by path.

    The 3D subsets (``adrenalmnist3d``, ... at 28 or 64 voxels a side) load as volumes ``(N, D, H, W, 1)``
    with ``spatial_dims=3``.

    Example:
        >>> ds = load_dataset("breastmnist", data_dir="../shared/data")  # doctest: +SKIP
        >>> ds.split("train").images.shape  # doctest: +SKIP
        (546, 28, 28, 1)
    """
    if str(name).endswith(".npz"):
        return load_npz(name)
    info = get_info(name)
    path = fetch_medmnist(info, size, data_dir=data_dir, download=download, progress=progress)
    ds = load_npz(path, task=info.task, labels=info.labels, spatial_dims=info.spatial_dims)
    _check_matches_catalogue(ds, info, size)
    return ImageDataset(name=info.name, task=info.task, labels=info.labels, channels=info.channels, size=size,
                        splits=ds.splits, license=info.license,
                        citation=f"{info.citation} Original data: {info.source}", source=info.source,
                        positive_label=info.positive_label, path=str(path),
                        spatial_dims=info.spatial_dims)


def load_npz(path: str | os.PathLike, task: str | None = None, labels: tuple[str, ...] | None = None,
             spatial_dims: int | None = None) -> ImageDataset:
    """Read an .npz in MedMNIST layout (``{split}_images``, ``{split}_labels`` for train, val and test).

    When ``task`` is not given it is inferred: 2-D label arrays with more than one column are multi-label,
    otherwise two classes are binary and more are multi-class. Label names default to ``"0"``, ``"1"``, ...
    ``spatial_dims`` (2 or 3) says whether the arrays hold images or volumes; unset, it is inferred: images
    are ``(N, H, W)`` or ``(N, H, W, 1|3)``; volumes ``(N, D, H, W)`` (MedMNIST 3D) or ``(N, D, H, W, 1|3)``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Dataset file '{path}' does not exist.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise DataError(f"'{path}' is not a readable .npz file ({e}). Re-download or re-create it.") from None
    missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in arrays]
    if missing:
        raise DataError(f"'{path}' lacks the arrays {', '.join(missing)}. An .npz in MedMNIST layout holds "
                        f"train_images, train_labels, val_images, val_labels, test_images and test_labels.")
    if spatial_dims is None:
        spatial_dims = _infer_spatial_dims(arrays["train_images"])
    splits = {s: _to_split(arrays[f"{s}_images"], arrays[f"{s}_labels"], path, s, spatial_dims) for s in SPLITS}
    shapes = {s.images.shape[1:] for s in splits.values()}
    if len(shapes) != 1:
        raise DataError(f"'{path}': the splits have different image shapes {sorted(shapes)}; they must match.")
    *sides, c = shapes.pop()
    h = sides[0]
    if len(set(sides)) != 1:
        kind = "images" if spatial_dims == 2 else "volumes"
        raise DataError(f"'{path}': {kind} are {'x'.join(map(str, sides))}; medclass expects square images and "
                        f"cubic volumes. Resize them to one side first.")
    multilabel = splits["train"].labels.ndim == 2
    n_out = (splits["train"].labels.shape[1] if multilabel
             else int(max(s.labels.max(initial=0) for s in splits.values())) + 1)
    if task is None:
        task = "multilabel" if multilabel else ("binary" if n_out <= 2 else "multiclass")
    if task not in TASKS:
        raise DataError(f"task must be one of {', '.join(TASKS)}; got {task!r}.")
    if labels is None:
        labels = tuple(str(i) for i in range(max(n_out, 2)))
    _check_labels(splits, len(labels), task, path)
    return ImageDataset(name=path.stem, task=task, labels=tuple(labels), channels=c, size=h, splits=splits,
                        path=str(path), spatial_dims=spatial_dims)


def _infer_spatial_dims(images: np.ndarray) -> int:
    """3 for ``(N, D, H, W)`` and ``(N, D, H, W, 1|3)`` arrays, else 2."""
    if images.ndim == 5 or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        return 3
    return 2


def _to_split(images: np.ndarray, labels: np.ndarray, path: Path, split: str, spatial_dims: int = 2) -> ArraySplit:
    if images.dtype != np.uint8:
        raise DataError(f"'{path}': {split}_images has dtype {images.dtype}; expected uint8 pixels (0-255).")
    if images.ndim == spatial_dims + 1:
        images = images[..., None]
    if images.ndim != spatial_dims + 2 or images.shape[-1] not in (1, 3):
        expected = "(N, H, W) or (N, H, W, 1|3)" if spatial_dims == 2 else "(N, D, H, W) or (N, D, H, W, 1|3)"
        raise DataError(f"'{path}': {split}_images has shape {images.shape}; expected {expected}.")
    if len(labels) != len(images):
        raise DataError(f"'{path}': {split} has {len(images)} images but {len(labels)} labels.")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise DataError(f"'{path}': {split}_labels must be non-negative integers; got dtype {labels.dtype}.")
    labels = labels.astype(np.int64)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return ArraySplit(images=images, labels=labels)


def _check_labels(splits: dict[str, ArraySplit], n_labels: int, task: str, path: Path) -> None:
    for name, s in splits.items():
        if get_kind(task).multilabel:
            if s.labels.ndim != 2 or s.labels.shape[1] != n_labels or s.labels.max(initial=0) > 1:
                raise DataError(f"'{path}': {name}_labels must be 0/1 of shape (N, {n_labels}); got {s.labels.shape}.")
        elif s.labels.ndim != 1 or s.labels.max(initial=0) >= n_labels:
            raise DataError(f"'{path}': {name}_labels must be class indices below {n_labels}; "
                            f"got shape {s.labels.shape} and maximum {s.labels.max(initial=0)}.")


def _check_matches_catalogue(ds: ImageDataset, info, size: int) -> None:
    for s, n in info.n_samples.items():
        if len(ds.splits[s]) != n:
            raise DataError(f"{ds.path}: {s} has {len(ds.splits[s])} images; {info.title} has {n}.")
    if ds.size != size or ds.channels != info.channels:
        raise DataError(f"{ds.path}: images are {ds.size}px with {ds.channels} channel(s); "
                        f"expected {size}px with {info.channels}.")


"""Write a dataset's images out as PNG files with a manifest CSV: the files a hospital would hand over.

``medclass data export-images breastmnist --split test --out examples/breast`` gives a folder of PNGs and
``examples/breast/manifest.csv`` (``path``, the label column(s), ``split_index``: the image's position in the
split), which ``medclass predict``, ``medclass explain``, ``medclass evaluate --manifest`` and ``medclass train
--manifest`` read as they are. Used by the README's walkthrough, and to try medclass's file paths on real images
offline.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..evaluation.kinds import get_kind
from ..utils.io import atomic_write_text
from .datasets import SPLITS, load_dataset

__all__ = ["write_image_files"]


def write_image_files(dataset: str, out: str | os.PathLike, split: str = "test", *, limit: int | None = None,
                      size: int = 28, data_dir: str | os.PathLike | None = None) -> Path:
    """Write ``split`` of ``dataset`` (a MedMNIST name or an .npz) as ``<split>-<index>.png`` into ``out``, with a
    ``manifest.csv`` beside them; return the manifest's path.

    Single-label tasks get a ``label`` column holding the class name; multi-label tasks one 0/1 column per label
    (the manifest's ``data.label_columns``). ``limit`` keeps the first ``limit`` images of the split.

    Example:
        >>> write_image_files("breastmnist", "examples/breast", "test", limit=20)  # doctest: +SKIP
        PosixPath('examples/breast/manifest.csv')
    """
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1; got {limit}.")
    ds = load_dataset(dataset, size=size, data_dir=data_dir)
    part = ds.split(split)
    n = len(part) if limit is None else min(limit, len(part))
    kind = get_kind(ds.task)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", *(ds.labels if kind.multilabel else ["label"]), "split_index"])
    for i in range(n):
        name = f"{split}-{i:05d}.png"
        image = np.asarray(part.images[i])
        png = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(png, format="PNG")
        (out / name).write_bytes(png.getvalue())
        y = part.labels[i]
        w.writerow([name, *([int(v) for v in y] if kind.multilabel else [ds.labels[int(y)]]), i])
    manifest = out / "manifest.csv"
    atomic_write_text(manifest, buf.getvalue())  # last: a folder with a manifest is complete
    return manifest

"""A folder with one sub-folder per class turned into a manifest CSV (``medclass data import-folder``)."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from pathlib import Path

from ..errors import ConfigError, DataError
from ..utils.io import atomic_write_text
from ..utils.text import natural_key
from .readers import image_format

__all__ = ["IMAGE_SUFFIXES", "import_folder"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom", ".nii", ".nii.gz")


def import_folder(folder: str | os.PathLike, out: str | os.PathLike, *, patient_regex: str | None = None) -> Path:
    """Write a manifest for a ``folder/<class>/...`` layout and return its path.

    Every file below a class folder whose name ends in a known image suffix (or a DICOM file without one)
    becomes a row labelled with the class folder's name. The patient id is the first sub-folder below the
    class folder (``folder/pneumonia/patient017/img3.dcm``), or the first group of ``patient_regex`` matched
    against the file name; without either each image is its own patient. Paths are written relative to the
    manifest's folder, so the manifest works without ``--image-root``.
    """
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise DataError(f"'{folder}' is not a folder. Pass a folder holding one sub-folder per class.")
    pattern = None
    if patient_regex:
        try:
            pattern = re.compile(patient_regex)
        except re.error as e:
            raise ConfigError(f"--patient-regex {patient_regex!r} is not a valid regular expression ({e}).") from None
    class_dirs = sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                        key=lambda d: natural_key(d.name))
    if len(class_dirs) < 2:
        raise DataError(f"'{folder}' holds {len(class_dirs)} class folder(s); a folder-per-class layout needs at "
                        f"least two (e.g. {folder}/normal/ and {folder}/pneumonia/).")
    rows, empty = [], []
    for d in class_dirs:
        files = sorted(p for p in d.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                            p.relative_to(d).parts)
                       and _is_image(p))
        if not files:
            empty.append(d.name)
        for p in files:
            rel_to_class = p.relative_to(d)
            patient = rel_to_class.parts[0] if len(rel_to_class.parts) > 1 else ""
            if pattern is not None:
                hit = pattern.search(p.name)
                if hit is None:
                    raise DataError(f"--patient-regex {patient_regex!r} does not match the file name '{p.name}' "
                                    f"({p}). Make it match every file, e.g. r'^(\\w+?)_'.")
                patient = hit.group(1) if hit.groups() else hit.group(0)
            rows.append((os.path.relpath(p, out.parent.resolve() if out.parent.exists() else out.parent), d.name,
                         patient))
    if empty:
        raise DataError(f"Class folder(s) {', '.join(repr(e) for e in empty)} in '{folder}' hold no images "
                        f"(known suffixes: {', '.join(IMAGE_SUFFIXES)}). Remove them or add images.")
    with_patients = any(r[2] for r in rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label", "patient_id"] if with_patients else ["path", "label"])
    for path, label, patient in rows:
        w.writerow([Path(path).as_posix(), label, patient or Path(path).stem] if with_patients
                   else [Path(path).as_posix(), label])
    atomic_write_text(out, buf.getvalue())
    log.info("wrote %s: %d images in %d classes", out, len(rows), len(class_dirs))
    return out


def _is_image(p: Path) -> bool:
    if p.name.lower().endswith(IMAGE_SUFFIXES):
        return True
    return "." not in p.name and image_format(p) == "dicom"  # DICOM files often have no suffix

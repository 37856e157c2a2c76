"""Write small image files of every kind a hospital has, for tests: 8/16-bit PNG and TIFF, JPEG, colour photographs,
DICOM (CT in Hounsfield units, a MONOCHROME1 radiograph, MR, RLE- and JPEG 2000-compressed) and NIfTI volumes.

Each file carries a learnable pattern (a bright square whose position depends on the class) on a noisy
background, in the units of its kind (HU for CT, 12-bit values for a radiograph, ...), so a tiny model trains on
them. Sizes are non-square on purpose, so centre crops and letterboxing are exercised.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless, generate_uid

KINDS = ("png8", "png16", "tiff8", "tiff16", "jpeg", "png_rgb", "jpeg_rgb", "dicom_ct", "dicom_ct_rle",
         "dicom_cr_mono1", "dicom_mr", "dicom_mr_j2k", "nifti")

_SHAPE = (44, 38)  # rows, columns: not square


def _pattern(rng: np.random.Generator, label: int, lo: float, hi: float, noise: float) -> np.ndarray:
    """Background near ``lo`` with noise, a square of ``hi`` whose place depends on ``label``."""
    h, w = _SHAPE
    x = lo + rng.normal(0, noise, size=(h, w))
    r, c = (6, 6) if label == 0 else (22, 18)
    x[r:r + 14, c:c + 14] = hi + rng.normal(0, noise, size=(14, 14))
    return x


def _rgb(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    tint = rng.uniform(0.7, 1.0, size=3)
    return np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)


def _dicom(path: Path, pixels: np.ndarray, *, modality: str, photometric: str = "MONOCHROME2", bits: int = 16,
           signed: bool = False, slope: float = 1.0, intercept: float = 0.0, syntax=ExplicitVRLittleEndian) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" else "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName, ds.PatientID = "Test^Patient", "TEST"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelSpacing = [0.7, 0.7]
    if modality == "CT":
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "HU"
    arr = pixels.astype(np.int16 if signed else np.uint16)
    ds.PixelData = arr.tobytes()
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax, arr, encoding_plugin="pylibjpeg" if syntax == JPEG2000Lossless else "")
    ds.save_as(path, enforce_file_format=True)


def write_image(kind: str, path_stem: Path, label: int, rng: np.random.Generator) -> Path:
    """One file of ``kind`` for class ``label``; returns its path (the suffix is chosen by the kind)."""
    if kind in ("png8", "tiff8", "jpeg"):
        a = np.clip(_pattern(rng, label, 40, 200, 12), 0, 255).astype(np.uint8)
        path = path_stem.with_suffix({"png8": ".png", "tiff8": ".tif", "jpeg": ".jpg"}[kind])
        Image.fromarray(a).save(path, **({"quality": 92} if kind == "jpeg" else {}))
    elif kind in ("png16", "tiff16"):
        a = np.clip(_pattern(rng, label, 9000, 40000, 1500), 0, 65535).astype(np.uint16)
        path = path_stem.with_suffix(".png" if kind == "png16" else ".tif")
        Image.fromarray(a).save(path)
    elif kind in ("png_rgb", "jpeg_rgb"):
        grey = np.clip(_pattern(rng, label, 20, 190, 12), 0, 255)
        h, w = grey.shape
        yy, xx = np.mgrid[:h, :w]
        grey[(yy - h / 2) ** 2 / (h / 2) ** 2 + (xx - w / 2) ** 2 / (w / 2) ** 2 > 1] = 2  # a dark circular border
        path = path_stem.with_suffix(".png" if kind == "png_rgb" else ".jpg")
        Image.fromarray(_rgb(grey, rng)).save(path, **({"quality": 92} if kind == "jpeg_rgb" else {}))
    elif kind in ("dicom_ct", "dicom_ct_rle"):  # HU -1000 (air) background, +40 tissue square; stored = HU + 1024
        hu = _pattern(rng, label, -900, 60, 25)
        path = path_stem.with_suffix(".dcm")
        _dicom(path, np.clip(hu + 1024, 0, 4095).round(), modality="CT", bits=12, intercept=-1024,
               syntax=RLELossless if kind == "dicom_ct_rle" else ExplicitVRLittleEndian)
    elif kind == "dicom_cr_mono1":  # a radiograph stored inverted: low values bright
        x = np.clip(_pattern(rng, label, 3500, 900, 80), 0, 4095).round()
        path = path_stem.with_suffix(".dcm")
        _dicom(path, x, modality="CR", photometric="MONOCHROME1", bits=12)
    elif kind in ("dicom_mr", "dicom_mr_j2k"):
        x = np.clip(_pattern(rng, label, 80, 900, 30), 0, 4095).round()
        path = path_stem.with_suffix(".dcm")
        _dicom(path, x, modality="MR", bits=12, syntax=JPEG2000Lossless if kind == "dicom_mr_j2k"
               else ExplicitVRLittleEndian)
    elif kind == "nifti":  # a 5-slice volume: the middle slice carries the pattern
        vol = np.stack([_pattern(rng, label, 100, 700, 25).T for _ in range(5)], axis=2).astype(np.float32)
        path = path_stem.with_suffix(".nii.gz")
        nib.save(nib.Nifti1Image(vol, np.diag([0.8, 0.8, 2.0, 1.0])), path)
    else:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return path


def write_manifest(root: Path, kind: str, n: int = 24, seed: int = 0, name: str = "manifest.csv",
                   classes: tuple[str, str] = ("neg", "pos")) -> Path:
    """``n`` files of ``kind`` under ``root``, half per class, one patient each, and a manifest CSV listing them."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        label = i % 2
        path = write_image(kind, root / f"{kind}_{i:03d}", label, rng)
        rows.append({"path": path.name, "label": classes[label], "patient_id": f"{kind}-p{i:03d}",
                     "site": "A" if i % 3 else "B"})
    manifest = root / name
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return manifest


def read_header(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path)

"""Decoding medical image files into float pixels: DICOM, NIfTI and ordinary images (8 and 16 bit).

:func:`read_file` looks at a file's content (the DICOM ``DICM`` marker, the NIfTI suffix) and returns a
:class:`Decoded`: float32 pixels ``(H, W, C)`` in the file's own units, plus the few technical facts that
preprocessing needs (modality, whether the values are Hounsfield units, the display window stored in the
file, the bit depth). Windowing, scaling to 8 bits and resizing happen later, in
:mod:`medclass.transforms.preprocess`.

- **DICOM** (pydicom): the modality LUT (``RescaleSlope`` / ``RescaleIntercept``) is applied, so CT comes out
  in Hounsfield units; ``MONOCHROME1`` (low values bright) is inverted within the stored value range so
  that, as in ``MONOCHROME2``, bright means dense; YBR colour is converted to RGB by pydicom; multi-frame
  files give one frame (the middle one by default). Compressed transfer syntaxes (JPEG, JPEG-LS, JPEG 2000,
  RLE) decode through pydicom's optional plugins (``pip install "medclass[dicom-codecs]"``).
- **NIfTI** (nibabel): a 2D image as is; a 3D volume gives one slice along ``slice_axis`` (the middle one by
  default), rotated by 90 degrees so that an axial slice of a RAS-oriented volume displays with anterior up,
  as radiology viewers show it. :func:`read_volume` returns the whole volume for 3D work.
- **PNG, JPEG, TIFF, BMP** (Pillow): 8-bit values 0-255; 16-bit (``I;16``) and 32-bit integer or float
  (``I``, ``F``) values are kept exactly.

Privacy: a DICOM header holds names, birth dates, institutions. Nothing here copies any header field other
than the technical ones listed in :class:`Decoded` into a return value, a log line or an error message;
errors name the file path only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError

__all__ = ["Decoded", "image_format", "read_dicom", "read_file", "read_nifti", "read_volume"]

log = logging.getLogger(__name__)

CODECS_HINT = 'pip install "medclass[dicom-codecs]"'


@dataclass(frozen=True)
class Decoded:
    """A decoded 2D image and the technical facts preprocessing needs (never patient data)."""

    pixels: np.ndarray  # float32 (H, W, C), C = 1 (grey) or 3 (colour), in the file's own units
    source: str  # "dicom" | "nifti" | "image"
    modality: str | None  # DICOM Modality (CT, MR, CR, DX, US, OT, ...) or None
    hounsfield: bool  # pixels are CT Hounsfield units (modality LUT applied to a CT image)
    window: tuple[float, float] | None  # (center, width) stored in the file, in output units
    bit_depth: int  # bits per stored sample
    value_range: tuple[float, float] | None  # natural range for scaling (8-bit: (0, 255)); None: measure it
    n_frames: int  # frames or slices in the file

    def __repr__(self) -> str:  # the pixel array would flood logs
        return (f"Decoded(shape={self.pixels.shape}, source={self.source!r}, modality={self.modality!r}, "
                f"hounsfield={self.hounsfield}, window={self.window}, bit_depth={self.bit_depth}, "
                f"n_frames={self.n_frames})")


def image_format(path: str | os.PathLike) -> str:
    """``"dicom"``, ``"nifti"`` or ``"image"`` for a file, from its suffix and content."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".dcm", ".dicom")):
        return "dicom"
    try:
        with open(p, "rb") as f:
            f.seek(128)
            if f.read(4) == b"DICM":
                return "dicom"
    except OSError:
        pass
    return "image"


def read_file(path: str | os.PathLike, *, frame: str | int = "middle", slice_axis: int = 2) -> Decoded:
    """Decode any supported file into a :class:`Decoded` 2D image (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file '{p}' does not exist" + (" (it is a folder)" if p.is_dir() else ""))
    kind = image_format(p)
    if kind == "dicom":
        return read_dicom(p, frame=frame)
    if kind == "nifti":
        return read_nifti(p, frame=frame, slice_axis=slice_axis)
    return _read_pillow(p)


# --- DICOM ---------------------------------------------------------------------------------------------


def _dcmread(p: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(p)
    except InvalidDicomError:
        raise DataError(f"'{p}' is not a DICOM file (no DICOM preamble or header). Check the file.") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise DataError(f"DICOM file '{p}' could not be read ({type(e).__name__}); it may be truncated or "
                        f"corrupt.") from None


def read_dicom(path: str | os.PathLike, *, frame: str | int = "middle") -> Decoded:
    """One frame of a DICOM file, with the modality LUT applied and MONOCHROME1 inverted."""
    from pydicom.pixels import apply_modality_lut

    p = Path(path)
    ds = _dcmread(p)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DataError(f"DICOM file '{p}' has no pixel data (e.g. a DICOMDIR, a structured report or a "
                        f"presentation state). Remove it from the manifest.")
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    index = _frame_index(frame, n_frames, p)
    try:
        arr = ds.pixel_array
    except (NotImplementedError, RuntimeError) as e:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        ts_name = getattr(ts, "name", str(ts))
        raise DataError(f"DICOM file '{p}' uses the compressed transfer syntax {ts_name!r}, and no installed "
                        f"decoder handles it ({str(e).splitlines()[0][:160]}). Install the decoders: "
                        f"{CODECS_HINT}.") from None
    except (ValueError, EOFError, OSError, AttributeError, KeyError, TypeError) as e:
        raise DataError(f"DICOM file '{p}': its pixel data could not be decoded ({type(e).__name__}); the file "
                        f"may be truncated or corrupt.") from None
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if n_frames > 1:
        arr = arr[index]
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    bits = int(getattr(ds, "BitsStored", getattr(ds, "BitsAllocated", 8)) or 8)
    modality = str(getattr(ds, "Modality", "") or "") or None
    if samples == 1:
        try:
            x = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
        except (ValueError, TypeError, AttributeError, KeyError) as e:
            raise DataError(f"DICOM file '{p}': its rescale (modality LUT) could not be applied "
                            f"({type(e).__name__}).") from None
        if photometric == "MONOCHROME1":
            x = _invert_monochrome1(x, arr, ds)
        x = x[..., None]
    else:
        x = np.asarray(arr, dtype=np.float32)
    if x.ndim != 3 or x.shape[-1] not in (1, 3):
        raise DataError(f"DICOM file '{p}': unexpected pixel array shape {x.shape}; expected a 2D grey or RGB "
                        f"image per frame.")
    has_rescale = "RescaleSlope" in ds or "RescaleIntercept" in ds
    hounsfield = modality == "CT" and samples == 1 and (has_rescale or str(getattr(ds, "RescaleType", "")) == "HU")
    return Decoded(pixels=np.ascontiguousarray(x), source="dicom", modality=modality, hounsfield=hounsfield,
                   window=_dicom_window(ds) if samples == 1 else None, bit_depth=bits,
                   value_range=(0.0, 255.0) if samples == 3 and bits <= 8 else None, n_frames=n_frames)


def _invert_monochrome1(x: np.ndarray, stored: np.ndarray, ds) -> np.ndarray:
    # Invert within the range the stored values can take (BitsStored, signed or not), mapped through the
    # same modality LUT: out = lo + hi - x. Using the data's own min/max instead would make the result depend
    # on the image content.
    from pydicom.pixels import apply_modality_lut

    bits = int(getattr(ds, "BitsStored", 16) or 16)
    signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    ends = np.asarray(apply_modality_lut(np.array([lo, hi], dtype=stored.dtype if stored.dtype.kind in "iu"
                                                  else np.int32), ds), dtype=np.float32)
    return (ends.min() + ends.max()) - x


def _dicom_window(ds) -> tuple[float, float] | None:
    c, w = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if c is None or w is None:
        return None
    try:
        c = float(c[0]) if not isinstance(c, (int, float, str)) and hasattr(c, "__getitem__") else float(c)
        w = float(w[0]) if not isinstance(w, (int, float, str)) and hasattr(w, "__getitem__") else float(w)
    except (TypeError, ValueError, IndexError):
        return None
    return (c, w) if w > 0 else None


def _frame_index(frame: str | int, n: int, p: Path) -> int:
    if frame == "middle":
        return n // 2
    try:
        i = int(frame)
    except (TypeError, ValueError):
        raise DataError(f"frame must be 'middle' or an index; got {frame!r} (for '{p}').") from None
    if not -n <= i < n:
        raise DataError(f"'{p}' has {n} frame(s); frame {i} does not exist. Use an index from 0 to {n - 1} or "
                        f"'middle' (data.frame).")
    return i % n


# --- NIfTI ----------------------------------------------------------------------------------------------


def _load_nifti(p: Path) -> np.ndarray:
    import nibabel as nib

    try:
        img = nib.load(str(p))
        return np.asarray(img.get_fdata(dtype=np.float32))
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError) as e:
        raise DataError(f"NIfTI file '{p}' could not be read ({type(e).__name__}); it may be truncated or "
                        f"corrupt.") from None


def read_nifti(path: str | os.PathLike, *, frame: str | int = "middle", slice_axis: int = 2) -> Decoded:
    """A 2D NIfTI image, or one slice of a 3D volume along ``slice_axis`` (displayed anterior up)."""
    p = Path(path)
    vol = _load_nifti(p)
    if vol.ndim == 4 and vol.shape[-1] == 1:
        vol = vol[..., 0]
    if vol.ndim == 2:
        sl, n = vol, 1
    elif vol.ndim == 3:
        if slice_axis not in (0, 1, 2):
            raise DataError(f"slice_axis must be 0, 1 or 2; got {slice_axis} (for '{p}').")
        n = vol.shape[slice_axis]
        sl = np.take(vol, _frame_index(frame, n, p), axis=slice_axis)
    else:
        raise DataError(f"NIfTI file '{p}' has shape {vol.shape}; expected a 2D image or a 3D volume (a 4D "
                        f"series needs one volume chosen first).")
    sl = np.rot90(sl)  # RAS voxel order (x right, y anterior) -> rows top to bottom = anterior to posterior
    return Decoded(pixels=np.ascontiguousarray(sl, dtype=np.float32)[..., None], source="nifti", modality=None,
                   hounsfield=False, window=None, bit_depth=32, value_range=None, n_frames=n)


def read_volume(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """A whole volume as float32 ``(D, H, W)`` (slices first) and safe facts (shape, voxel spacing).

    NIfTI volumes are returned as ``(z, y, x)``; multi-frame DICOM as ``(frame, row, column)`` with the
    modality LUT applied.
    """
    p = Path(path)
    if image_format(p) == "nifti":
        import nibabel as nib

        vol = _load_nifti(p)
        if vol.ndim == 4 and vol.shape[-1] == 1:
            vol = vol[..., 0]
        if vol.ndim != 3:
            raise DataError(f"NIfTI file '{p}' has shape {vol.shape}; read_volume expects a 3D volume.")
        zooms = tuple(float(z) for z in nib.load(str(p)).header.get_zooms()[:3])
        return np.ascontiguousarray(np.transpose(vol, (2, 1, 0))), {"shape": list(vol.shape), "spacing": zooms}
    from pydicom.pixels import apply_modality_lut

    ds = _dcmread(p)
    if "PixelData" not in ds:
        raise DataError(f"DICOM file '{p}' has no pixel data.")
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 1:
        raise DataError(f"DICOM file '{p}' is colour; read_volume expects grey frames.")
    try:
        arr = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float32)
    except (NotImplementedError, RuntimeError, ValueError, EOFError) as e:
        raise DataError(f"DICOM file '{p}': pixel data could not be decoded ({type(e).__name__}).") from None
    if arr.ndim == 2:
        arr = arr[None]
    spacing = [float(v) for v in getattr(ds, "PixelSpacing", [])] or None
    return np.ascontiguousarray(arr), {"shape": list(arr.shape), "spacing": spacing}


# --- ordinary images -------------------------------------------------------------------------------------


def _read_pillow(p: Path) -> Decoded:
    try:
        with Image.open(p) as im:
            im.load()
            n_frames = int(getattr(im, "n_frames", 1) or 1)
            return _from_pil(im, p, n_frames)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        why = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise DataError(f"image '{p}' could not be read ({why}). Is it a corrupt or truncated file, or not an "
                        f"image? PNG, JPEG, TIFF, BMP, DICOM and NIfTI are supported.") from None


def _from_pil(im: Image.Image, p: Path, n_frames: int) -> Decoded:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        x = np.asarray(im, dtype=np.uint16).astype(np.float32)
        return Decoded(x[..., None], "image", None, False, None, 16, (0.0, 65535.0), n_frames)
    if mode in ("I", "F"):
        x = np.asarray(im).astype(np.float32)
        return Decoded(x[..., None], "image", None, False, None, 32, None, n_frames)
    if mode in ("L", "LA", "1") or (mode == "P" and _palette_is_grey(im)):
        x = np.asarray(im.convert("L"), dtype=np.float32)[..., None]
    elif mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV", "PA", "RGBX", "RGBa"):
        x = np.asarray(im.convert("RGB"), dtype=np.float32)
    else:
        raise DataError(f"image '{p}' has the unsupported pixel mode {mode!r}. Save it as 8- or 16-bit grey or "
                        f"8-bit RGB.")
    return Decoded(x, "image", None, False, None, 8, (0.0, 255.0), n_frames)


def _palette_is_grey(im: Image.Image) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())

"""Decoding medical image files into float pixels: DICOM, NIfTI and ordinary images (8 and 16 bit).

:func:`read_file` decides what a file is from its name and first bytes (:func:`image_format`) and returns a
:class:`Decoded`: float32 pixels ``(H, W, C)`` in the file's own units, plus the few technical facts that
preprocessing needs (modality, whether the values are Hounsfield units, the display window stored in the
file, the bit depth, the natural value range). Windowing, scaling to 8 bits and resizing happen later, in
:mod:`medclass.transforms.preprocess`. :func:`read_volume` returns a whole volume for 3D work.

The formats are decoded in their own modules: DICOM in :mod:`medclass.data.dicom` (modality LUT,
MONOCHROME1, windows, palettes, frames; it also says what is done to keep patient data out of results, logs
and errors) and NIfTI in :mod:`medclass.data.nifti` (RAS orientation, slice display). This module decides
which applies and reads the rest with Pillow:

**PNG, JPEG, TIFF, BMP** (Pillow): 8-bit values 0-255; 16-bit (``I;16``, ``I;16B``; 16-bit PNGs that Pillow
opens as ``I``) values are kept exactly with ``value_range`` (0, 65535); 32-bit integer and float TIFFs
(``I``, ``F``) are kept as they are. Palette and alpha images are handled as :mod:`medclass.data.images`
does. Pillow reads 16-bit RGB PNGs as 8-bit RGB.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from ._decode_common import _DECODE_ERRORS, SUPPORTED, Decoded, _frame_index
from .dicom import _bare_dicom, _dicom_volume, _guarded, _head, read_dicom
from .images import _palette_is_grey
from .nifti import _nifti_volume, read_nifti

__all__ = ["Decoded", "image_format", "read_dicom", "read_file", "read_nifti", "read_volume"]

_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".jp2", ".pgm",
                             ".ppm", ".pbm", ".pnm"})
_MODES_16BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_MODES_COLOUR = ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def image_format(path: str | os.PathLike) -> str:
    """``"dicom"``, ``"nifti"`` or ``"image"`` for a file, from its name and first bytes.

    ``.nii``/``.nii.gz`` is NIfTI and ``.dcm``/``.dicom``/``.ima`` DICOM. Any other file is DICOM when it has
    the ``DICM`` marker at byte 128, or, when its suffix is not an image format's, when it starts like a
    DICOM data set without the preamble (older files and many files without a suffix, e.g. ``IM0001``).
    Everything else is left to Pillow.
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith(_DICOM_SUFFIXES):
        return "dicom"
    head = _head(p)
    if head[128:132] == b"DICM" or (p.suffix.lower() not in _IMAGE_SUFFIXES and _bare_dicom(head)):
        return "dicom"
    return "image"


def read_file(path: str | os.PathLike, *, frame: str | int = "middle", slice_axis: int = 2) -> Decoded:
    """Decode a DICOM, NIfTI or ordinary image file into a :class:`Decoded` 2D image.

    Args:
        path: the file.
        frame: which frame of a multi-frame DICOM, slice of a NIfTI volume or page of a TIFF: ``"middle"``
            or an index (negative counts from the end).
        slice_axis: for NIfTI volumes, the RAS axis to slice along (0 sagittal, 1 coronal, 2 axial).

    Raises:
        DataError: the file is missing, unreadable, truncated, of an unsupported kind, has no pixel data,
            needs a DICOM decoder that is not installed, or ``frame`` is out of range.

    Example:
        >>> d = read_file("chest.dcm")  # doctest: +SKIP
        >>> d.pixels.shape, d.modality, d.window  # doctest: +SKIP
        ((2048, 2048, 1), 'CR', (2047.0, 4096.0))
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file '{p}' does not exist" + (" (it is a folder)" if p.is_dir() else "") + ".")
    kind = image_format(p)
    if kind == "dicom":
        return read_dicom(p, frame=frame)
    if kind == "nifti":
        return read_nifti(p, frame=frame, slice_axis=slice_axis)
    return _read_pillow(p, frame)


def read_volume(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """A whole volume as float32 ``(D, H, W)`` and safe technical facts about it, for 3D models.

    NIfTI: the RAS-oriented volume as axial slices from inferior to superior, each oriented as
    :func:`read_nifti` shows it (``volume[k]`` equals ``read_nifti(path, frame=k).pixels[..., 0]``).
    DICOM: the frames of a (multi-frame) file in file order, each through the modality LUT and MONOCHROME1
    inversion as in :func:`read_dicom`; a single-frame file gives ``D = 1``.

    Returns:
        ``(volume, facts)``; facts holds ``shape``, ``spacing`` (mm along D, H, W; an entry is None when the
        file does not say), ``source``, ``modality`` and ``hounsfield``. No header text beyond these.

    Raises:
        DataError: unreadable file, a colour DICOM, a 4D NIfTI series, or an ordinary image file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file '{p}' does not exist" + (" (it is a folder)" if p.is_dir() else "") + ".")
    kind = image_format(p)
    if kind == "nifti":
        return _nifti_volume(p)
    if kind == "dicom":
        return _guarded(p, _dicom_volume, p)
    raise DataError(f"'{p}' is an ordinary image file; read_volume reads NIfTI volumes and multi-frame DICOM.")


# --- ordinary images -------------------------------------------------------------------------------------


def _read_pillow(p: Path, frame: str | int = "middle") -> Decoded:
    try:
        with Image.open(p) as im:
            n = int(getattr(im, "n_frames", 1) or 1)
            if n > 1:
                im.seek(_frame_index(frame, n, p))
            im.load()
            return _from_pil(im, p, n)
    except Image.DecompressionBombError:
        raise DataError(f"image '{p}' has more pixels than Pillow opens by default (a decompression-bomb guard). "
                        f"Tile or shrink it first (whole-slide images need a tiling step).") from None
    except (UnidentifiedImageError, SyntaxError, *_DECODE_ERRORS) as e:
        why = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise DataError(f"image '{p}' could not be read ({why}). Is it a corrupt or truncated file, or not an "
                        f"image? {SUPPORTED}.") from None


def _from_pil(im: Image.Image, p: Path, n_frames: int) -> Decoded:
    mode = im.mode
    # 16-bit grey: Pillow opens it as I;16* (or as I, 32-bit, for PNGs, whose samples are at most 16 bits)
    if mode in _MODES_16BIT or (mode == "I" and im.format == "PNG"):
        x = np.asarray(im).astype(np.float32)
        return Decoded(x[..., None], "image", None, False, None, 16, (0.0, 65535.0), n_frames)
    if mode in ("I", "F"):
        x = np.asarray(im).astype(np.float32)
        return Decoded(x[..., None], "image", None, False, None, 32, None, n_frames)
    if mode in ("L", "LA", "1") or (mode in ("P", "PA") and _palette_is_grey(im)):
        x = np.asarray(im.convert("L"), dtype=np.float32)[..., None]
    elif mode in _MODES_COLOUR:
        x = np.asarray(im.convert("RGB"), dtype=np.float32)
    else:
        raise DataError(f"image '{p}' has the unsupported pixel mode {mode!r}. Save it as 8- or 16-bit grey or "
                        f"8-bit RGB.")
    return Decoded(x, "image", None, False, None, 8, (0.0, 255.0), n_frames)

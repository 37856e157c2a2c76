"""Decoding medical image files into float pixels: DICOM, NIfTI and ordinary images (8 and 16 bit).

:func:`read_file` decides what a file is from its name and first bytes (:func:`image_format`) and returns a
:class:`Decoded`: float32 pixels ``(H, W, C)`` in the file's own units, plus the few technical facts that
preprocessing needs (modality, whether the values are Hounsfield units, the display window stored in the
file, the bit depth, the natural value range). Windowing, scaling to 8 bits and resizing happen later, in
:mod:`medclass.transforms.preprocess`. :func:`read_volume` returns a whole volume for 3D work.

**DICOM** (pydicom 3). The pixel data are decoded one frame at a time by pydicom's decoder for the file's
transfer syntax (``Decoder.as_array(ds, index=...)``), so the middle frame of a 500-frame cine loop does not
decode the other 499. Compressed syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE) go through pydicom's optional
plugins (``pip install "medclass[dicom-codecs]"``); when none is installed the error names the transfer syntax
and that command. Then, for grey images:

- the modality LUT: ``RescaleSlope``/``RescaleIntercept`` (or a ``ModalityLUTSequence``) through
  :func:`pydicom.pixels.apply_modality_lut`; enhanced multi-frame files keep them per frame in the functional
  groups, which pydicom does not read, so they are looked up there (per-frame group first, then shared).
  A CT image with a rescale whose ``RescaleType`` is absent or ``HU`` is flagged ``hounsfield``.
- ``MONOCHROME1`` (low values bright) is inverted after the modality LUT so that, as in ``MONOCHROME2``,
  bright means dense: ``out = lo + hi - x`` where ``lo..hi`` is the range the *stored* values can take
  (``BitsStored`` and ``PixelRepresentation``) mapped through the same modality LUT. The possible range is
  used rather than the image's own min/max so that the result does not depend on the image content (two
  radiographs of one detector invert the same way). The stored window centre is inverted alike
  (``lo + hi - centre``) so it still selects the same tissue.
- the window (``WindowCenter``/``WindowWidth``, the first value when several are stored; per frame for
  enhanced files) is reported, not applied.

Colour: YBR_FULL/YBR_FULL_422 and the JPEG/JPEG 2000 colour transforms become RGB in pydicom's decoder;
``PALETTE COLOR`` goes through :func:`pydicom.pixels.apply_color_lut` (a palette is a display device, so
16-bit entries are reduced to 8 bits by their high byte; a palette of greys gives one channel).

**NIfTI** (nibabel). The volume is viewed in RAS+ orientation (``nib.io_orientation`` of the affine, flips
and axis swaps only, no resampling), so ``slice_axis`` 0, 1, 2 always mean sagittal, coronal and axial, and
the slice index counts from the patient's left, posterior or inferior end. A slice is displayed as a DICOM
viewer shows the same plane (radiological convention): superior (or anterior, for axial slices) at the top
and the patient's right (or anterior, for sagittal slices) on the image's left. For an axial slice ``m[x, y]``
of a RAS volume that is ``np.flip(m.T)``, i.e. ``np.rot90(m)`` mirrored left-right; plain ``np.rot90`` would
be the neurological convention, which shows the left-right mirror image of the DICOM slice of the same scan.
NIfTI carries no modality, so ``hounsfield`` is
False even for a CT volume: use a custom window (``data.preprocess.window_center``/``window_width``).

**PNG, JPEG, TIFF, BMP** (Pillow): 8-bit values 0-255; 16-bit (``I;16``, ``I;16B``; 16-bit PNGs that Pillow
opens as ``I``) values are kept exactly with ``value_range`` (0, 65535); 32-bit integer and float TIFFs
(``I``, ``F``) are kept as they are. Palette and alpha images are handled as :mod:`medclass.data.images`
does. Pillow reads 16-bit RGB PNGs as 8-bit RGB.

**Privacy.** A DICOM header holds names, birth dates, institutions. Nothing here reads any header field other
than the technical ones listed in :class:`Decoded` (and the pixel-module fields the decoder needs); nothing
copies a header value into a return value, a log line or an error message. Errors name the file path only,
and messages from third-party code are passed on only where they describe the pixel stream (decoder
plugins); otherwise only the exception's type is given.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .images import _palette_is_grey

__all__ = ["Decoded", "image_format", "read_dicom", "read_file", "read_nifti", "read_volume"]

log = logging.getLogger(__name__)

CODECS_HINT = 'pip install "medclass[dicom-codecs]"'
SUPPORTED = "PNG, JPEG, TIFF, BMP, DICOM and NIfTI (.nii, .nii.gz) are supported"

_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".jp2", ".pgm",
                             ".ppm", ".pbm", ".pnm"})
_MODES_16BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_MODES_COLOUR = ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")

# What third-party decoders raise on a damaged file. struct.error and zlib.error are not ValueErrors.
_DECODE_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError, EOFError, OSError, struct.error,
                  zlib.error, RuntimeError, NotImplementedError, OverflowError)


@dataclass(frozen=True)
class Decoded:
    """A decoded 2D image and the technical facts preprocessing needs (never patient data).

    Attributes:
        pixels: float32 ``(H, W, C)``, C = 1 (grey) or 3 (colour), in the file's own units (Hounsfield units
            for CT).
        source: ``"dicom"``, ``"nifti"`` or ``"image"``.
        modality: the DICOM Modality (``CT``, ``MR``, ``CR``, ``DX``, ``US``, ``OT``, ...), else None.
        hounsfield: the pixels are CT Hounsfield units (modality LUT applied to a CT image).
        window: ``(center, width)`` stored in the file, in the units of ``pixels``; None when absent.
        bit_depth: bits per stored sample (8 for ordinary images, ``BitsStored`` for DICOM).
        value_range: the natural range for min-max scaling when the format defines one ((0, 255) for 8-bit,
            (0, 65535) for 16-bit images); None when it must be measured (grey DICOM, NIfTI, float TIFF).
        n_frames: frames (DICOM), slices along the requested axis (NIfTI) or pages (TIFF) in the file.
    """

    pixels: np.ndarray
    source: str
    modality: str | None
    hounsfield: bool
    window: tuple[float, float] | None
    bit_depth: int
    value_range: tuple[float, float] | None
    n_frames: int

    def __repr__(self) -> str:  # the pixel array would flood logs
        return (f"Decoded(shape={self.pixels.shape}, source={self.source!r}, modality={self.modality!r}, "
                f"hounsfield={self.hounsfield}, window={self.window}, bit_depth={self.bit_depth}, "
                f"value_range={self.value_range}, n_frames={self.n_frames})")


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


# --- DICOM ---------------------------------------------------------------------------------------------


def read_dicom(path: str | os.PathLike, *, frame: str | int = "middle") -> Decoded:
    """One frame of a DICOM file: modality LUT applied, MONOCHROME1 inverted, colour as RGB (module docstring).

    Raises:
        DataError: not DICOM, truncated or corrupt, no pixel data, no decoder installed for its transfer
            syntax, or ``frame`` out of range. Messages name the file, never a header value.
    """
    p = Path(path)
    return _guarded(p, _read_dicom, p, frame)


def _guarded(p: Path, func, *args):
    """Call ``func``; a third-party failure on a damaged file becomes a :class:`DataError` naming the file.

    pydicom parses element values lazily, so any header access (not only ``dcmread``) can fail on a corrupt
    file, with whatever the parser raises (``BytesLengthException``, ``struct.error``, ...). Only the
    exception's type is reported: pydicom's messages can quote header values.
    """
    try:
        return func(*args)
    except DataError:
        raise
    except BaseException as e:  # a parser or codec failing on a damaged file: see _is_decoder_failure
        if not _is_decoder_failure(e):
            raise
        raise DataError(f"DICOM file '{p}' could not be read ({type(e).__name__}); its header or pixel data is "
                        f"corrupt. Copy it again from its source.") from None


def _read_dicom(p: Path, frame: str | int) -> Decoded:
    ds = _dcmread(p)
    n = _n_frames(ds, p)
    i = _frame_index(frame, n, p)
    arr, photometric = _decode(ds, p, i)
    modality = _text(ds, "Modality") or None
    bits = _int(ds, "BitsStored", _int(ds, "BitsAllocated", 8))
    if photometric == "PALETTE COLOR":
        x = _palette_to_rgb(arr, ds, p)
        return Decoded(x, "dicom", modality, False, None, 8, (0.0, 255.0), n)
    if arr.ndim == 3:
        if arr.shape[-1] != 3:
            raise DataError(f"DICOM file '{p}' has {arr.shape[-1]} samples per pixel; only grey (1) and colour "
                            f"(3) images are supported.")
        x = np.ascontiguousarray(arr, dtype=np.float32)
        return Decoded(x, "dicom", modality, False, None, bits, (0.0, float(2 ** bits - 1)), n)
    x, window, hounsfield = _grey(arr, ds, i, p, modality)
    return Decoded(np.ascontiguousarray(x[..., None]), "dicom", modality, hounsfield, window, bits, None, n)


def _head(p: Path) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(132)
    except OSError:
        return b""


def _bare_dicom(head: bytes) -> bool:
    """Does ``head`` start like a DICOM data set written without preamble and ``DICM`` (little endian)?"""
    if len(head) < 8 or int.from_bytes(head[:2], "little") not in (0x0002, 0x0008):
        return False
    explicit = head[4:6].isalpha() and head[4:6].isupper()  # a VR such as b"CS"
    implicit = int.from_bytes(head[4:8], "little") < 0x10000  # a short value length
    return explicit or implicit


def _dcmread(p: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    head = _head(p)
    bare = head[128:132] != b"DICM" and _bare_dicom(head)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(p, force=bare)
    except InvalidDicomError:
        raise DataError(f"'{p}' is not a DICOM file (no 'DICM' marker at byte 128 and no DICOM data set at its "
                        f"start). Check that it is the file you meant; {SUPPORTED}.") from None
    except _DECODE_ERRORS as e:
        raise DataError(f"DICOM file '{p}' could not be read ({type(e).__name__}); it is truncated or corrupt. "
                        f"Copy it again from its source.") from None
    # (catch_warnings swaps process-wide state: decode files in processes, e.g. DataLoader workers, not threads)
    if caught:  # pydicom's warnings may quote header values: keep them out of the output
        log.debug("pydicom warned %d time(s) while reading '%s' (%s)", len(caught), p,
                  ", ".join(sorted({w.category.__name__ for w in caught})))
    truncated = any("End of file reached" in str(w.message) for w in caught)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        if truncated:
            raise DataError(f"DICOM file '{p}' ends before its pixel data; it is truncated or corrupt. Copy it "
                            f"again from its source.")
        raise DataError(f"DICOM file '{p}' has no pixel data (e.g. a structured report or DICOMDIR, a "
                        f"presentation state or an RT plan). Remove it from the manifest or folder.")
    meta = ds.file_meta
    if "TransferSyntaxUID" not in meta:  # a file without meta information: say how it was read
        implicit, little = ds.original_encoding
        meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                  ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    return ds


def _decode(ds, p: Path, index: int | None) -> tuple[np.ndarray, str]:
    """Frame ``index`` (all frames for None) as decoded by pydicom (YBR converted to RGB), and the photometric
    interpretation of the result."""
    from pydicom.pixels import get_decoder

    ts = ds.file_meta.TransferSyntaxUID
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise DataError(f"DICOM file '{p}' uses the transfer syntax {_ts_name(ts)}, which pydicom cannot decode. "
                        f"Convert the file to an uncompressed syntax (e.g. dcmtk's `dcmdjpeg` or gdcmconv).") from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no plugin"
        raise DataError(f"DICOM file '{p}' is compressed with {_ts_name(ts)} and no installed decoder handles it "
                        f"(pydicom plugins: {missing}). Install the decoders: {CODECS_HINT}.")
    try:
        arr, meta = decoder.as_array(ds, index=index)
    except RuntimeError as e:  # every available plugin failed: pydicom lists each plugin and its reason
        reasons = " ".join(str(e).split())[:500]
        raise DataError(f"DICOM file '{p}': none of the installed decoders could decode its {_ts_name(ts)} pixel "
                        f"data ({reasons}). The file may be corrupt, or need another decoder: {CODECS_HINT}, or "
                        f"GDCM (pip install python-gdcm).") from None
    except BaseException as e:  # a codec failing on a damaged file: see _is_decoder_failure
        if not _is_decoder_failure(e):
            raise
        raise DataError(f"DICOM file '{p}': its pixel data could not be decoded ({type(e).__name__}); it is "
                        f"truncated or corrupt. Copy it again from its source.") from None
    photometric = str(meta.get("photometric_interpretation") or _text(ds, "PhotometricInterpretation")).upper()
    return arr, photometric or "MONOCHROME2"


def _is_decoder_failure(e: BaseException) -> bool:
    """Is ``e`` a codec failing on damaged data (as opposed to Ctrl-C, exit, or running out of memory)?

    Compiled decoder plugins raise whatever their bindings produce: pylibjpeg-rle (Rust, pyo3) turns an
    out-of-bounds read on a corrupt stream into ``pyo3_runtime.PanicException``, a ``BaseException``, so
    catching ``Exception`` is not enough to turn one bad file into a :class:`DataError`.
    """
    if isinstance(e, MemoryError):
        return False
    return isinstance(e, Exception) or type(e).__name__ == "PanicException"


def _ts_name(ts) -> str:
    return f"'{getattr(ts, 'name', ts)}' ({ts})"


def _grey(arr: np.ndarray, ds, index: int, p: Path,
          modality: str | None) -> tuple[np.ndarray, tuple[float, float] | None, bool]:
    """A grey frame through the modality LUT and MONOCHROME1 inversion; its window; whether it is in HU."""
    from pydicom.pixels import apply_modality_lut

    lut = _modality_source(ds, index)
    try:
        x = np.asarray(apply_modality_lut(arr, lut) if lut is not None else arr, dtype=np.float32)
        window = _window(ds, index)
        if _text(ds, "PhotometricInterpretation").upper() == "MONOCHROME1":
            lo, hi = _output_range(ds, lut, arr.dtype)
            x = (lo + hi) - x
            window = (lo + hi - window[0], window[1]) if window else None
    except _DECODE_ERRORS as e:
        raise DataError(f"DICOM file '{p}': its rescale (modality LUT) could not be applied "
                        f"({type(e).__name__}); the header is corrupt.") from None
    rescale_type = _text(lut, "RescaleType").upper() if lut is not None else ""
    hounsfield = modality == "CT" and lut is not None and rescale_type in ("", "HU")
    return x, window, hounsfield


def _modality_source(ds, index: int):
    """The data set holding the modality LUT or rescale for frame ``index``, or None when there is none.

    Classic images keep it at the top level; enhanced multi-frame images in the Pixel Value Transformation
    functional group, per frame or shared (PS3.3 C.7.6.16.2.9). pydicom's ``apply_modality_lut`` reads the
    top level only, so a functional-group item (which has the same keywords) is handed to it instead.
    """
    if "ModalityLUTSequence" in ds or ("RescaleSlope" in ds and "RescaleIntercept" in ds):
        return ds
    item = _functional_group(ds, index, "PixelValueTransformationSequence")
    return item if item is not None and "RescaleSlope" in item and "RescaleIntercept" in item else None


def _functional_group(ds, index: int, keyword: str):
    for groups, i in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        seq = ds.get(groups)
        if seq and len(seq) > i and seq[i].get(keyword):
            return seq[i].get(keyword)[0]
    return None


def _output_range(ds, lut, stored_dtype: np.dtype) -> tuple[float, float]:
    """The range of modality-LUT outputs over every value the stored bits can hold (MONOCHROME1 inversion)."""
    from pydicom.pixels import apply_modality_lut

    bits = _int(ds, "BitsStored", 16)
    signed = _int(ds, "PixelRepresentation", 0) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    if lut is None:
        return float(lo), float(hi)
    # a rescale is linear, so the two ends suffice; a LUT sequence can be any shape, so map the whole range
    values = np.arange(lo, hi + 1) if "ModalityLUTSequence" in lut and bits <= 16 else np.array([lo, hi])
    out = np.asarray(apply_modality_lut(values.astype(np.int64 if signed else np.uint32), lut), dtype=np.float64)
    return float(out.min()), float(out.max())


def _window(ds, index: int) -> tuple[float, float] | None:
    src = ds if "WindowCenter" in ds else _functional_group(ds, index, "FrameVOILUTSequence")
    if src is None:
        return None
    try:
        c, w = (_first(src.get(k)) for k in ("WindowCenter", "WindowWidth"))
    except (TypeError, ValueError, IndexError):
        return None
    return (c, w) if np.isfinite(c) and np.isfinite(w) and w > 0 else None


def _first(value) -> float:
    """A number, or the first of several (pydicom's MultiValue for ``WindowCenter = 40\\400``)."""
    return float(value) if isinstance(value, (int, float, str, bytes)) else float(value[0])


def _palette_to_rgb(arr: np.ndarray, ds, p: Path) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    try:
        rgb = np.asarray(apply_color_lut(arr, ds))
    except _DECODE_ERRORS as e:
        raise DataError(f"DICOM file '{p}' is PALETTE COLOR but its colour lookup table could not be applied "
                        f"({type(e).__name__}); the header is corrupt or uses an enhanced palette.") from None
    if rgb.dtype.itemsize > 1:  # 16-bit entries: a display palette, 8 bits of colour in the high byte
        rgb = rgb >> (8 * rgb.dtype.itemsize - 8)
    rgb = rgb[..., :3].astype(np.float32)
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return np.ascontiguousarray(rgb[..., :1])
    return np.ascontiguousarray(rgb)


def _n_frames(ds, p: Path) -> int:
    value = ds.get("NumberOfFrames")
    if value in (None, ""):
        return 1
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise DataError(f"DICOM file '{p}' has an invalid Number of Frames; the header is corrupt.") from None
    return max(n, 1)


def _text(ds, keyword: str) -> str:
    try:
        return str(ds.get(keyword, "") or "").strip() if ds is not None else ""
    except _DECODE_ERRORS:
        return ""


def _int(ds, keyword: str, default: int) -> int:
    try:
        return int(ds.get(keyword, default))
    except (TypeError, ValueError):
        return default


def _frame_index(frame: str | int, n: int, p: Path) -> int:
    if frame == "middle":
        return n // 2
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer, str)):
        raise DataError(f"frame must be 'middle' or an index; got {frame!r} (for '{p}').")
    try:
        i = int(frame)
    except ValueError:
        raise DataError(f"frame must be 'middle' or an index; got {frame!r} (for '{p}').") from None
    if not -n <= i < n:
        raise DataError(f"'{p}' has {n} frame(s); frame {i} does not exist. Use an index from 0 to {n - 1}, a "
                        f"negative one from the end, or 'middle' (data.frame).")
    return i % n


def _dicom_volume(p: Path) -> tuple[np.ndarray, dict]:
    ds = _dcmread(p)
    n = _n_frames(ds, p)
    arr, photometric = _decode(ds, p, index=None)
    if n == 1:
        arr = arr[None]
    if arr.ndim != 3 or photometric == "PALETTE COLOR":
        raise DataError(f"DICOM file '{p}' is a colour image; read_volume reads grey frames (CT, MR, PET, ...).")
    modality = _text(ds, "Modality") or None
    frames = [_grey(arr[i], ds, i, p, modality) for i in range(n)]
    vol = np.stack([f[0] for f in frames])
    measures = _functional_group(ds, 0, "PixelMeasuresSequence") or ds
    row_col = [float(v) for v in (measures.get("PixelSpacing") or [])][:2]
    between = measures.get("SpacingBetweenSlices") or measures.get("SliceThickness")
    spacing = (float(between) if between else None, *(row_col or [None, None]))
    return np.ascontiguousarray(vol), {"shape": list(vol.shape), "spacing": spacing, "source": "dicom",
                                       "modality": modality, "hounsfield": all(f[2] for f in frames)}


# --- NIfTI ----------------------------------------------------------------------------------------------


def _nifti_errors() -> tuple[type[BaseException], ...]:
    """What nibabel raises on a damaged file: its own ImageFileError and HeaderDataError (plain Exceptions),
    gzip's OSError and EOFError, zlib.error, and numpy's ValueError for a memory map past the end."""
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    return (ImageFileError, HeaderDataError, *_DECODE_ERRORS)


def _load_nifti(p: Path) -> tuple[Any, tuple[int, ...], np.ndarray]:
    """The nibabel image, its spatial shape (2 or 3 axes) and its RAS orientation (``io_orientation``)."""
    import nibabel as nib

    try:
        img = nib.load(str(p))
        ornt = nib.orientations.io_orientation(img.affine)
    except _nifti_errors() as e:
        raise DataError(f"NIfTI file '{p}' could not be read ({type(e).__name__}); it is truncated or corrupt, "
                        f"or not NIfTI.") from None
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) not in (2, 3):
        raise DataError(f"NIfTI file '{p}' has shape {shape}: a {len(shape)}D series. medclass reads 2D images "
                        f"and 3D volumes; choose one volume first (e.g. nibabel's `image.slicer[..., 0]`).")
    if np.isnan(ornt).any():  # a degenerate affine: take the voxel axes as they are
        ornt = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
    return img, shape, ornt


def _nifti_array(img, p: Path) -> np.ndarray:
    """All voxels as float32 (``scl_slope``/``scl_inter`` applied), with a trailing axis of length 1 dropped.

    The whole array is read even for one slice: only reading to the end shows that a file is truncated (a
    ``.nii.gz`` cut short still yields every slice before the cut).
    """
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except _nifti_errors() as e:
        raise DataError(f"NIfTI file '{p}': its voxels could not be read ({type(e).__name__}); it is truncated "
                        f"or corrupt.") from None
    return data[..., 0] if data.ndim == 4 else data


def _display(m: np.ndarray) -> np.ndarray:
    """A RAS slice ``m[a, b]`` (a, b ascending RAS axes) shown as a DICOM viewer shows that plane."""
    return np.flip(m.T)


def read_nifti(path: str | os.PathLike, *, frame: str | int = "middle", slice_axis: int = 2) -> Decoded:
    """A 2D NIfTI image, or one slice of a 3D volume along the RAS axis ``slice_axis`` (module docstring).

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        frame: ``"middle"`` or a slice index along ``slice_axis``, counted from the patient's left (0),
            posterior (1) or inferior (2) end.
        slice_axis: 0 sagittal, 1 coronal, 2 axial. Ignored for a 2D image (one slice thick).
    """
    import nibabel as nib

    p = Path(path)
    if slice_axis not in (0, 1, 2):
        raise DataError(f"slice_axis must be 0 (sagittal), 1 (coronal) or 2 (axial); got {slice_axis!r} "
                        f"(for '{p}').")
    img, shape, ornt = _load_nifti(p)
    if len(shape) == 2 or shape[2] == 1:  # a 2D image: its single slice, whatever plane it lies in
        slice_axis = int(ornt[2, 0])
    stored = int(np.flatnonzero(ornt[:, 0] == slice_axis)[0])
    n = shape[stored] if stored < len(shape) else 1
    k = _frame_index(frame, n, p)
    data = _nifti_array(img, p)
    data = data[..., None] if data.ndim == 2 else data
    k_stored = n - 1 - k if ornt[stored, 1] < 0 else k  # the index in the file's own voxel order
    slab = np.take(data, [k_stored], axis=stored)
    m = np.take(nib.orientations.apply_orientation(slab, ornt), 0, axis=slice_axis)
    bits = int(img.get_data_dtype().itemsize * 8)
    return Decoded(pixels=np.ascontiguousarray(_display(m))[..., None], source="nifti", modality=None,
                   hounsfield=False, window=None, bit_depth=bits, value_range=None, n_frames=n)


def _nifti_volume(p: Path) -> tuple[np.ndarray, dict]:
    import nibabel as nib

    img, shape, ornt = _load_nifti(p)
    data = _nifti_array(img, p)
    if data.ndim == 2:
        data = data[..., None]
    ras = nib.orientations.apply_orientation(data, ornt)
    zooms = [float(z) for z in img.header.get_zooms()[:3]] + [1.0] * (3 - min(3, len(shape)))
    ras_zooms = [zooms[int(np.flatnonzero(ornt[:, 0] == a)[0])] for a in range(3)]
    vol = np.transpose(ras, (2, 1, 0))[:, ::-1, ::-1]  # vol[k] == _display(ras[:, :, k]): read_nifti's slice k
    return np.ascontiguousarray(vol), {
        "shape": list(vol.shape), "spacing": (ras_zooms[2], ras_zooms[1], ras_zooms[0]), "source": "nifti",
        "modality": None, "hounsfield": False, "stored_orientation": "".join(nib.aff2axcodes(img.affine))}


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

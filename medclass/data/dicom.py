"""Decoding DICOM files (pydicom 3) into float pixels: one frame as a :class:`~medclass.data.readers.Decoded`
(:func:`read_dicom`), or every frame of a file for :func:`medclass.data.readers.read_volume`.

The pixel data are decoded one frame at a time by pydicom's decoder for the file's transfer syntax
(``Decoder.as_array(ds, index=...)``), so the middle frame of a 500-frame cine loop does not decode the other
499. Compressed syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE) go through pydicom's optional plugins
(``pip install "medclass[dicom-codecs]"``); when none is installed the error names the transfer syntax and
that command. Then, for grey images:

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

**Privacy.** A DICOM header holds names, birth dates, institutions. Nothing here reads any header field other
than the technical ones listed in :class:`Decoded` (and the pixel-module fields the decoder needs); nothing
copies a header value into a return value, a log line or an error message. Errors name the file path only,
and messages from third-party code are passed on only where they describe the pixel stream (decoder
plugins); otherwise only the exception's type is given.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._decode_common import _DECODE_ERRORS, SUPPORTED, Decoded, _frame_index

__all__ = ["read_dicom"]

log = logging.getLogger(__name__)

CODECS_HINT = 'pip install "medclass[dicom-codecs]"'


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
    spacing = _pixel_spacing(ds, i)
    if photometric == "PALETTE COLOR":
        x = _palette_to_rgb(arr, ds, p)
        return Decoded(x, "dicom", modality, False, None, 8, (0.0, 255.0), n, photometric, spacing)
    if arr.ndim == 3:
        if arr.shape[-1] != 3:
            raise DataError(f"DICOM file '{p}' has {arr.shape[-1]} samples per pixel; only grey (1) and colour "
                            f"(3) images are supported.")
        x = np.ascontiguousarray(arr, dtype=np.float32)
        return Decoded(x, "dicom", modality, False, None, bits, (0.0, float(2 ** bits - 1)), n, photometric, spacing)
    x, window, hounsfield = _grey(arr, ds, i, p, modality)
    stored = _text(ds, "PhotometricInterpretation").upper() or photometric
    return Decoded(np.ascontiguousarray(x[..., None]), "dicom", modality, hounsfield, window, bits, None, n, stored,
                   spacing)


def _pixel_spacing(ds, index: int) -> tuple[float, float] | None:
    """Row and column spacing in mm: Pixel Spacing (per frame in enhanced files), else Imager Pixel Spacing."""
    measures = _functional_group(ds, index, "PixelMeasuresSequence")
    for src, key in ((ds, "PixelSpacing"), (measures, "PixelSpacing"), (ds, "ImagerPixelSpacing")):
        try:
            value = src.get(key) if src is not None else None
            if value is not None and len(value) >= 2:
                rows, cols = float(value[0]), float(value[1])
                if rows > 0 and cols > 0:
                    return rows, cols
        except _DECODE_ERRORS:
            continue
    return None


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

"""Whole volumes for 3D models: a folder of DICOM slices (a series), a NIfTI volume, or a multi-frame DICOM file.

:func:`read_series` turns a folder of single-frame DICOM files into one float32 ``(D, H, W)`` volume:

1. **Files.** Every file of the folder that :func:`~medclass.data.readers.image_format` calls DICOM (by suffix,
   ``DICM`` marker or a bare data set) is a candidate; other files (``.png`` thumbnails, notes) are ignored, as
   are DICOM files without an image (``DICOMDIR``, structured reports, presentation states).
2. **One series.** Files are grouped by ``SeriesInstanceUID``. A folder holding several series (a localiser and
   the axial scan, two reconstructions) is refused unless ``series`` chooses one, by its position in the list
   the error shows (ordered by ``SeriesNumber``, then file name) or by its UID.
3. **Geometry.** All slices must share one orientation (``ImageOrientationPatient`` within ``1e-3`` per
   direction cosine), one matrix (``Rows`` x ``Columns``) and one ``PixelSpacing``. They are sorted by their
   position (``ImagePositionPatient``) projected on the slice normal (row direction x column direction), never
   by file name or ``InstanceNumber``, which exporters renumber. Steps between neighbours must be uniform:
   within ``max(spacing_atol, spacing_tolerance x median)`` (default 0.01 mm or 1%) of the median step; a step
   of about k times the median is reported as k - 1 missing slices, two slices at one position (within
   ``spacing_atol``) as duplicates (multi-echo or repeated acquisitions share a series), anything else as
   non-uniform spacing. Each is a :class:`DataError` naming the folder, the files and what to do.
   Files without any position or orientation (some secondary captures) are stacked in ``InstanceNumber``
   order, spacing from ``SpacingBetweenSlices`` or ``SliceThickness``, with a warning.
4. **Pixels.** Each slice is decoded by :mod:`medclass.data.dicom` (its decoder, the modality LUT to
   Hounsfield units, ``MONOCHROME1`` inversion), so a slice here equals ``read_dicom`` of the same file.
5. **Orientation.** By default the volume is turned (axis permutations and flips, never resampling) so that
   its axes point to the patient's superior, posterior and left, ``"SPL"``: axial slices from the feet up, each
   as a radiologist views it (anterior at the top, the patient's right on the image's left). That is what
   :func:`~medclass.data.readers.read_volume` gives for NIfTI, so one scan reads alike from either format,
   and a sagittal or coronal acquisition comes out in the same anatomical layout as an axial one.

The result comes with *facts*, technical values only (the same keys as ``read_volume``'s, plus a few):
``shape``, ``spacing`` (mm along D, H, W), ``source``, ``modality``, ``hounsfield``, ``orientation`` (where
each axis points, e.g. ``"SPL"``; None when unknown), ``acquired_orientation``, ``n_slices``, ``window`` (the
middle slice's stored window, in the volume's units) and ``tilt_deg`` (gantry tilt, 0 for most scans). No UID,
name, date or description is returned, logged or put in an error message; errors name file paths only.

:func:`read_nifti_volume` adds the choice of one volume from a 4D NIfTI file (a time series, several
contrasts), and :func:`read_any_volume` dispatches on what a path is.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._decode_common import _DECODE_ERRORS
from .dicom import _bare_dicom, _dcmread, _decode, _grey, _guarded, _head, _n_frames, _text
from .nifti import _nifti_errors
from .readers import image_format, read_volume

__all__ = ["CANONICAL_ORIENTATION", "read_any_volume", "read_nifti_volume", "read_series"]

log = logging.getLogger(__name__)

CANONICAL_ORIENTATION = "SPL"  # D to superior, H to posterior, W to the patient's left (read_volume's NIfTI layout)
ORIENTATION_ATOL = 1e-3  # per direction cosine: about 0.06 degrees
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_LPS_POSITIVE, _LPS_NEGATIVE = "LPS", "RAI"  # DICOM patient axes x, y, z point to the left, posterior, superior


@dataclass(frozen=True)
class _Slice:
    path: Path
    series: str  # SeriesInstanceUID: used to group, never shown
    series_number: float
    rows: int
    cols: int
    frames: int
    position: tuple[float, float, float] | None
    iop: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    instance: float
    between: float | None  # SpacingBetweenSlices, else SliceThickness


def read_series(folder: str | os.PathLike, *, series: int | str | None = None, reorient: bool = True,
                spacing_tolerance: float = 0.01, spacing_atol: float = 0.01,
                recursive: bool = False) -> tuple[np.ndarray, dict]:
    """One DICOM series from a folder of slices, as float32 ``(D, H, W)`` in the files' units (module docstring).

    Args:
        folder: the folder holding the slices (one file per slice).
        series: which series when the folder holds several: its index in the list the error message shows, or
            its ``SeriesInstanceUID``. None: the folder must hold exactly one.
        reorient: turn the volume to the canonical ``"SPL"`` layout (axis swaps and flips only); False keeps the
            acquisition order (D along the slice normal, H down the rows, W along a row).
        spacing_tolerance, spacing_atol: slices are evenly spaced when every step is within
            ``max(spacing_atol, spacing_tolerance * median step)`` mm of the median step.
        recursive: also read the files of sub-folders.

    Returns:
        ``(volume, facts)``; see the module docstring for the facts.

    Raises:
        DataError: no DICOM images in the folder, several series and none chosen, mixed orientations or
            matrices, duplicate positions, missing slices, non-uniform spacing, colour slices, unreadable files.

    Example:
        >>> vol, facts = read_series("ct/series_003")  # doctest: +SKIP
        >>> vol.shape, facts["spacing"], facts["orientation"], facts["hounsfield"]  # doctest: +SKIP
        ((120, 512, 512), (2.5, 0.7, 0.7), 'SPL', True)
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"DICOM series folder '{root}' does not exist" + (" (it is a file; use read_any_volume)"
                                                                          if root.is_file() else "") + ".")
    slices, ignored = _scan(root, recursive)
    if not slices:
        raise DataError(f"folder '{root}' holds no DICOM images ({ignored} other file(s)"
                        f"{'' if recursive else ', sub-folders not searched'}). Give the folder that holds the "
                        f"slices of one series" + ("" if recursive else ", or pass recursive=True") + ".")
    chosen = _choose_series(root, slices, series)
    if len(chosen) == 1 and chosen[0].frames > 1:  # one multi-frame file: its frames are the slices
        vol, facts = read_volume(chosen[0].path)
        return vol, {**facts, "orientation": None, "acquired_orientation": None, "n_slices": int(vol.shape[0]),
                     "window": None, "tilt_deg": 0.0}
    multi = [s for s in chosen if s.frames > 1]
    if multi:
        raise DataError(f"folder '{root}': the series mixes multi-frame files ('{multi[0].path.name}', "
                        f"{multi[0].frames} frames) with {len(chosen) - 1} other file(s). Read a multi-frame file on "
                        f"its own (read_any_volume on the file).")
    _check_matrix(root, chosen)
    ordered, geometry = _order(root, chosen, spacing_tolerance, spacing_atol)
    vol, modality, hounsfield, windows = _decode_slices(root, ordered)
    direction, spacing = geometry["direction"], geometry["spacing"]
    acquired = _axis_codes(direction) if direction is not None else None
    if reorient and direction is not None:
        vol, spacing, direction = _to_canonical(vol, spacing, direction)
    facts = {"shape": list(vol.shape), "spacing": spacing, "source": "dicom-series", "modality": modality,
             "hounsfield": hounsfield, "orientation": _axis_codes(direction) if direction is not None else None,
             "acquired_orientation": acquired, "n_slices": len(ordered), "window": windows[len(windows) // 2],
             "tilt_deg": geometry["tilt_deg"]}
    return np.ascontiguousarray(vol), facts


# --- scanning and grouping -------------------------------------------------------------------------------


def _scan(root: Path, recursive: bool) -> tuple[list[_Slice], int]:
    files = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                   if p.is_file() and not p.name.startswith("."))
    slices, ignored = [], 0
    for p in files:
        if image_format(p) != "dicom":
            ignored += 1
            continue
        s = _guarded(p, _header, p)
        if s is None:
            ignored += 1
        else:
            slices.append(s)
    return slices, ignored


def _header(p: Path) -> _Slice | None:
    """The geometry of one file from its header (pixels not read), or None when it holds no image."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    head = _head(p)
    bare = head[128:132] != b"DICM" and _bare_dicom(head)
    try:
        with warnings.catch_warnings():  # pydicom's warnings may quote header values: keep them out
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(p, stop_before_pixels=True, force=bare)
    except InvalidDicomError:
        return None
    except _DECODE_ERRORS as e:
        raise DataError(f"DICOM file '{p}' could not be read ({type(e).__name__}); it is truncated or corrupt. "
                        f"Copy it again from its source, or remove it from the folder.") from None
    sop_class = _text(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID")
    if sop_class == _DICOMDIR_CLASS or "Rows" not in ds or "Columns" not in ds:
        return None
    return _Slice(path=p, series=_text(ds, "SeriesInstanceUID"), series_number=_number(ds, "SeriesNumber"),
                  rows=int(ds.Rows), cols=int(ds.Columns), frames=_n_frames(ds, p),
                  position=_floats(ds, "ImagePositionPatient", 3), iop=_floats(ds, "ImageOrientationPatient", 6),
                  pixel_spacing=_floats(ds, "PixelSpacing", 2), instance=_number(ds, "InstanceNumber"),
                  between=_positive(ds, "SpacingBetweenSlices") or _positive(ds, "SliceThickness"))


def _floats(ds, keyword: str, n: int) -> tuple[float, ...] | None:
    try:
        value = ds.get(keyword)
        out = tuple(float(v) for v in value) if value is not None else ()
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def _number(ds, keyword: str) -> float:
    try:
        value = ds.get(keyword)
        return float(value) if value not in (None, "") else float("inf")
    except (TypeError, ValueError):
        return float("inf")


def _positive(ds, keyword: str) -> float | None:
    v = _number(ds, keyword)
    return abs(v) if np.isfinite(v) and v != 0 else None


def _choose_series(root: Path, slices: list[_Slice], series: int | str | None) -> list[_Slice]:
    groups: dict[str, list[_Slice]] = {}
    for s in slices:
        groups.setdefault(s.series, []).append(s)
    ordered = sorted(groups.values(), key=lambda g: (g[0].series_number, min(s.path.name for s in g)))
    if series is None:
        if len(ordered) == 1:
            return ordered[0]
        raise DataError(f"folder '{root}' holds {len(ordered)} DICOM series ({_describe(ordered)}). Choose one with "
                        f"series=INDEX (0-{len(ordered) - 1}, in this order) or series=SeriesInstanceUID, or move each "
                        f"series into its own folder.")
    if isinstance(series, (int, np.integer)) and not isinstance(series, bool):
        if not 0 <= int(series) < len(ordered):
            raise DataError(f"folder '{root}' holds {len(ordered)} DICOM series ({_describe(ordered)}); series "
                            f"{int(series)} does not exist. Use an index from 0 to {len(ordered) - 1}.")
        return ordered[int(series)]
    if isinstance(series, str):
        for g in ordered:
            if g[0].series == series.strip():
                return g
        raise DataError(f"folder '{root}' has no series with the SeriesInstanceUID given ({len(ordered)} series: "
                        f"{_describe(ordered)}). Check the UID, or choose by index (series=0..{len(ordered) - 1}).")
    raise DataError(f"series must be an index, a SeriesInstanceUID or None; got a {type(series).__name__} "
                    f"(for folder '{root}').")


def _describe(groups: list[list[_Slice]]) -> str:
    """``#0: 3 files, 512x512 (IM0001..IM0003)`` per series: counts, matrix and file names, no header text."""
    parts = []
    for i, g in enumerate(groups):
        names = sorted(s.path.name for s in g)
        span = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
        parts.append(f"#{i}: {len(g)} file{'s' * (len(g) != 1)}, {g[0].rows}x{g[0].cols} ({span})")
    return "; ".join(parts)


# --- geometry ----------------------------------------------------------------------------------------------


def _check_matrix(root: Path, slices: list[_Slice]) -> None:
    first = slices[0]
    for s in slices[1:]:
        if (s.rows, s.cols) != (first.rows, first.cols):
            raise DataError(f"folder '{root}': the slices of one series have different sizes ('{first.path.name}' "
                            f"{first.rows}x{first.cols}, '{s.path.name}' {s.rows}x{s.cols}). It is not one volume; "
                            f"split the files into folders by size.")
        if (s.pixel_spacing is None) != (first.pixel_spacing is None) or (
                s.pixel_spacing and not np.allclose(s.pixel_spacing, first.pixel_spacing, rtol=1e-3, atol=1e-4)):
            raise DataError(f"folder '{root}': the slices have different pixel spacings ('{first.path.name}' "
                            f"{_mm(first.pixel_spacing)}, '{s.path.name}' {_mm(s.pixel_spacing)}). It is not one "
                            f"volume; split the files into folders by reconstruction.")


def _mm(v) -> str:
    return "x".join(f"{x:g}" for x in v) + " mm" if v else "none"


def _order(root: Path, slices: list[_Slice], rtol: float, atol: float) -> tuple[list[_Slice], dict]:
    """The slices sorted along the normal, and the volume's direction cosines, spacing and tilt."""
    has_geometry = [s.position is not None and s.iop is not None for s in slices]
    row_col = slices[0].pixel_spacing
    if not any(has_geometry):
        return _order_without_geometry(root, slices, row_col)
    if not all(has_geometry):
        bad = slices[has_geometry.index(False)]
        raise DataError(f"folder '{root}': '{bad.path.name}' has no Image Position/Orientation (Patient) but other "
                        f"slices do. Remove it (a localiser or a screenshot?) or re-export the series.")
    iop0 = np.array(slices[0].iop)
    for s in slices[1:]:
        if np.abs(np.array(s.iop) - iop0).max() > ORIENTATION_ATOL:
            n_other = sum(np.abs(np.array(t.iop) - iop0).max() > ORIENTATION_ATOL for t in slices)
            raise DataError(f"folder '{root}': the slices have different orientations "
                            f"('{slices[0].path.name}' is {_plane(iop0)}, '{s.path.name}' is {_plane(s.iop)}; "
                            f"{n_other} of {len(slices)} differ from the first). A volume needs parallel slices; "
                            f"split the files into one folder per orientation (localisers apart).")
    r, c = iop0[:3], iop0[3:]
    normal = np.cross(r, c)
    if not np.linalg.norm(normal) > 0.5:
        raise DataError(f"folder '{root}': Image Orientation (Patient) of '{slices[0].path.name}' is degenerate "
                        f"(row and column directions parallel). The header is corrupt.")
    normal = normal / np.linalg.norm(normal)
    pos = np.array([s.position for s in slices])
    along = pos @ normal
    order = np.lexsort((np.array([s.instance for s in slices]), along))
    slices, along, pos = [slices[i] for i in order], along[order], pos[order]
    if len(slices) == 1:
        step = slices[0].between
        tilt = 0.0
    else:
        step = _check_steps(root, slices, np.diff(along), rtol, atol)
        lateral = np.linalg.norm(np.diff(pos, axis=0) - np.outer(np.diff(along), normal), axis=1)
        tilt = float(np.degrees(np.arctan(np.median(lateral) / step)))
        if tilt > 0.1:
            log.warning("folder '%s': the slices are sheared by %.1f degrees (gantry tilt); the volume is stacked "
                        "as acquired, not resampled", root, tilt)
    spacing = (float(step) if step else None, *(row_col if row_col else (None, None)))
    direction = np.stack([normal, c, r], axis=1)  # columns: where D, H, W point (DICOM patient axes, LPS)
    return slices, {"direction": direction, "spacing": spacing, "tilt_deg": round(tilt, 3)}


def _check_steps(root: Path, slices: list[_Slice], steps: np.ndarray, rtol: float, atol: float) -> float:
    """The median step along the normal, after refusing duplicates, gaps and uneven spacing."""
    same = np.flatnonzero(steps <= atol)
    if len(same):
        a, b = slices[same[0]], slices[same[0] + 1]
        raise DataError(f"folder '{root}': {len(same)} pair(s) of slices share a position, e.g. '{a.path.name}' and "
                        f"'{b.path.name}' (both at {_along(a, slices[0])}). The folder holds duplicates, or several "
                        f"images per position (echoes, time points, repeated acquisitions): remove the copies, or "
                        f"split the images into one folder per echo/time point.")
    m = float(np.median(steps))
    tol = max(atol, rtol * m)
    k = np.rint(steps / m)
    gaps = np.flatnonzero((k >= 2) & (np.abs(steps - k * m) <= max(tol, 0.05 * m)))
    if len(gaps):
        i = gaps[0]
        missing = int(k[gaps].sum() - len(gaps))
        raise DataError(f"folder '{root}': {missing} slice(s) are missing. The spacing is {m:g} mm but "
                        f"'{slices[i].path.name}' and '{slices[i + 1].path.name}' are {steps[i]:g} mm apart"
                        f"{f' (and {len(gaps) - 1} more gap(s))' if len(gaps) > 1 else ''}. Copy the complete series "
                        f"again; a volume with holes would be distorted.")
    uneven = np.flatnonzero(np.abs(steps - m) > tol)
    if len(uneven):
        i = uneven[0]
        raise DataError(f"folder '{root}': the slice spacing is not uniform: steps from {steps.min():g} to "
                        f"{steps.max():g} mm (median {m:g} mm, tolerance {tol:g} mm), e.g. {steps[i]:g} mm between "
                        f"'{slices[i].path.name}' and '{slices[i + 1].path.name}'. Resample the series to even spacing "
                        f"first (e.g. dcm2niix, then read the NIfTI), or pass a larger spacing_tolerance.")
    return m


def _along(s: _Slice, first: _Slice) -> str:
    n = np.cross(np.array(first.iop[:3]), np.array(first.iop[3:]))
    return f"{float(np.dot(s.position, n / np.linalg.norm(n))):g} mm along the normal"


def _plane(iop) -> str:
    n = np.abs(np.cross(np.array(iop[:3]), np.array(iop[3:])))
    name = ("sagittal", "coronal", "axial")[int(n.argmax())]
    return name if n.max() > 0.95 else f"oblique (closest to {name})"


def _order_without_geometry(root: Path, slices: list[_Slice], row_col) -> tuple[list[_Slice], dict]:
    instances = [s.instance for s in slices]
    if len(slices) > 1 and (not all(np.isfinite(instances)) or len(set(instances)) != len(instances)):
        raise DataError(f"folder '{root}': the slices carry neither Image Position (Patient) nor distinct Instance "
                        f"Numbers, so their order is unknown. Re-export the series with its geometry.")
    ordered = sorted(slices, key=lambda s: s.instance)
    log.warning("folder '%s': no Image Position/Orientation (Patient); %d slices stacked by Instance Number, "
                "spacing and orientation unknown", root, len(ordered))
    step = ordered[0].between
    spacing = (step, *(row_col if row_col else (None, None)))
    return ordered, {"direction": None, "spacing": spacing, "tilt_deg": 0.0}


# --- pixels ----------------------------------------------------------------------------------------------


def _decode_slices(root: Path, slices: list[_Slice]) -> tuple[np.ndarray, str | None, bool, list]:
    out, modalities, hu, windows = [], set(), [], []
    for s in slices:
        x, modality, hounsfield, window = _guarded(s.path, _decode_slice, s.path)
        out.append(x)
        modalities.add(modality)
        hu.append(hounsfield)
        windows.append(window)
    if len(modalities) > 1:
        raise DataError(f"folder '{root}': the series mixes modalities ({', '.join(sorted(map(str, modalities)))}). "
                        f"Split the files by modality.")
    return np.stack(out).astype(np.float32, copy=False), modalities.pop(), all(hu), windows


def _decode_slice(p: Path) -> tuple[np.ndarray, str | None, bool, tuple[float, float] | None]:
    ds = _dcmread(p)
    arr, photometric = _decode(ds, p, 0)
    if arr.ndim != 2 or photometric == "PALETTE COLOR":
        raise DataError(f"DICOM file '{p}' is a colour image ({photometric}); a volume is built from grey slices "
                        f"(CT, MR, PET, ...).")
    modality = _text(ds, "Modality") or None
    x, window, hounsfield = _grey(arr, ds, 0, p, modality)
    return x, modality, hounsfield, window


# --- orientation -----------------------------------------------------------------------------------------


def _axis_codes(direction: np.ndarray) -> str:
    """Where each array axis points, one letter per axis (DICOM LPS axes; ``"SPL"`` for a plain axial stack)."""
    codes = []
    for k in range(3):
        v = direction[:, k]
        a = int(np.abs(v).argmax())
        codes.append(_LPS_POSITIVE[a] if v[a] > 0 else _LPS_NEGATIVE[a])
    return "".join(codes)


def _assign_axes(direction: np.ndarray) -> list[int]:
    """For each array axis, the patient axis (0 x, 1 y, 2 z) it is closest to, each patient axis used once.

    Greedy on the largest remaining cosine, so an oblique axis at 45 degrees still gets a distinct axis (as
    nibabel's ``io_orientation`` does).
    """
    w = np.abs(direction).copy()
    out = [-1, -1, -1]
    for _ in range(3):
        world, k = np.unravel_index(int(w.argmax()), w.shape)
        out[int(k)] = int(world)
        w[world, :] = -1
        w[:, k] = -1
    return out


def _to_canonical(vol: np.ndarray, spacing: tuple, direction: np.ndarray) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Permute and flip ``vol`` so that D, H, W point to S, P, L (patient z, y, x), as close as the slices allow."""
    world = _assign_axes(direction)
    target = {2: 0, 1: 1, 0: 2}  # patient z -> D, y -> H, x -> W
    perm = [0, 0, 0]
    for k, w in enumerate(world):
        perm[target[w]] = k
    vol = np.transpose(vol, perm)
    direction = direction[:, perm]
    spacing = tuple(spacing[k] for k in perm)
    for axis in range(3):
        w = world[perm[axis]]
        if direction[w, axis] < 0:
            vol = np.flip(vol, axis)
            direction[:, axis] = -direction[:, axis]
    return vol, spacing, direction


# --- NIfTI and dispatch ----------------------------------------------------------------------------------


def read_nifti_volume(path: str | os.PathLike, *, volume: int | None = None) -> tuple[np.ndarray, dict]:
    """A NIfTI volume as float32 ``(D, H, W)`` in the ``"SPL"`` layout of :func:`~medclass.data.readers.read_volume`.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file, 3D, or 4D (a time series, diffusion directions, several contrasts).
        volume: for a 4D file, which volume (0-based; negative counts from the end). A 4D file is refused
            without one; a 3D file accepts only None or 0.

    Raises:
        DataError: unreadable file, a 4D file without ``volume``, ``volume`` out of range, more than 4 axes.
    """
    import nibabel as nib

    p = Path(path)
    if not p.is_file():
        raise DataError(f"file '{p}' does not exist" + (" (it is a folder)" if p.is_dir() else "") + ".")
    try:
        img = nib.load(str(p))
    except _nifti_errors() as e:
        raise DataError(f"NIfTI file '{p}' could not be read ({type(e).__name__}); it is truncated or corrupt, "
                        f"or not NIfTI.") from None
    shape = tuple(int(s) for s in img.shape)
    n = shape[3] if len(shape) == 4 else 1
    if len(shape) > 4:
        raise DataError(f"NIfTI file '{p}' has shape {shape} ({len(shape)} axes); medclass reads 3D volumes and one "
                        f"volume of a 4D series. Split it first (e.g. nibabel's `image.slicer`).")
    if n == 1:
        if volume not in (None, 0, -1):
            raise DataError(f"NIfTI file '{p}' holds one 3D volume (shape {shape}); volume={volume!r} does not "
                            f"exist. Leave volume unset.")
        vol, facts = read_volume(p)
        return vol, {**facts, "orientation": CANONICAL_ORIENTATION, "n_volumes": 1}
    if volume is None:
        raise DataError(f"NIfTI file '{p}' is 4D (shape {shape}): {n} volumes, e.g. time points, diffusion "
                        f"directions or contrasts. Choose one with volume=K (0 to {n - 1}); a classifier reads one "
                        f"3D volume per case.")
    if isinstance(volume, bool) or not isinstance(volume, (int, np.integer)) or not -n <= int(volume) < n:
        raise DataError(f"NIfTI file '{p}' has {n} volumes; volume={volume!r} does not exist. Use an index from 0 "
                        f"to {n - 1} (negative counts from the end).")
    k = int(volume) % n
    try:
        sub = img.slicer[..., k]
        ornt = nib.orientations.io_orientation(sub.affine)
        data = np.asarray(sub.get_fdata(dtype=np.float32))
    except _nifti_errors() as e:
        raise DataError(f"NIfTI file '{p}': volume {k} could not be read ({type(e).__name__}); the file is "
                        f"truncated or corrupt.") from None
    if np.isnan(ornt).any():  # a degenerate affine: voxel axes as they are (as medclass.data.nifti does)
        ornt = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
    ras = nib.orientations.apply_orientation(data, ornt)
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    ras_zooms = [zooms[int(np.flatnonzero(ornt[:, 0] == a)[0])] for a in range(3)]
    # the layout of medclass.data.nifti._nifti_volume: vol[k] is read_nifti's axial slice k (tested to agree)
    vol = np.ascontiguousarray(np.transpose(ras, (2, 1, 0))[:, ::-1, ::-1])
    return vol, {"shape": list(vol.shape), "spacing": (ras_zooms[2], ras_zooms[1], ras_zooms[0]), "source": "nifti",
                 "modality": None, "hounsfield": False, "stored_orientation": "".join(nib.aff2axcodes(img.affine)),
                 "orientation": CANONICAL_ORIENTATION, "n_volumes": n, "volume": k}


def read_any_volume(path: str | os.PathLike, *, series: int | str | None = None, volume: int | None = None,
                    **series_options) -> tuple[np.ndarray, dict]:
    """A volume from whatever ``path`` is: a folder of DICOM slices, a NIfTI file, or a multi-frame DICOM file.

    Args:
        path: a folder (:func:`read_series`), a ``.nii``/``.nii.gz`` file (:func:`read_nifti_volume`) or a DICOM
            file (its frames, :func:`~medclass.data.readers.read_volume`; ``orientation`` is then None).
        series: folders only: which series (see :func:`read_series`).
        volume: 4D NIfTI only: which volume.
        **series_options: folders only: ``reorient``, ``spacing_tolerance``, ``spacing_atol``, ``recursive``.

    Raises:
        DataError: the path is missing or an ordinary image; an option that does not apply to this kind of
            path; whatever the reader raises.
    """
    p = Path(path)
    if p.is_dir():
        if volume is not None:
            raise DataError(f"'{p}' is a folder (a DICOM series); volume={volume!r} applies to 4D NIfTI files only.")
        return read_series(p, series=series, **series_options)
    if not p.is_file():
        raise DataError(f"'{p}' does not exist. Give a folder of DICOM slices, a NIfTI file or a DICOM file.")
    options = [k for k, v in (("series", series), *series_options.items()) if v is not None]
    kind = image_format(p)
    if options:
        verb = "applies" if len(options) == 1 else "apply"
        raise DataError(f"'{p}' is a file; {', '.join(options)} {verb} to folders of DICOM slices only.")
    if kind == "nifti":
        return read_nifti_volume(p, volume=volume)
    if volume is not None:
        raise DataError(f"'{p}' is not NIfTI; volume={volume!r} applies to 4D NIfTI files only.")
    if kind == "dicom":
        vol, facts = read_volume(p)
        return vol, {**facts, "orientation": None, "n_slices": int(vol.shape[0])}
    raise DataError(f"'{p}' is an ordinary image file, not a volume. Give a folder of DICOM slices, a NIfTI file "
                    f"(.nii, .nii.gz) or a multi-frame DICOM file.")

"""Decoding NIfTI files (nibabel) into float pixels: one slice as a :class:`~medclass.data.readers.Decoded`
(:func:`read_nifti`), or the whole volume for :func:`medclass.data.readers.read_volume`.

The volume is viewed in RAS+ orientation (``nib.io_orientation`` of the affine, flips and axis swaps only,
no resampling), so ``slice_axis`` 0, 1, 2 always mean sagittal, coronal and axial, and the slice index counts
from the patient's left, posterior or inferior end. A slice is displayed as a DICOM viewer shows the same
plane (radiological convention): superior (or anterior, for axial slices) at the top and the patient's right
(or anterior, for sagittal slices) on the image's left. For an axial slice ``m[x, y]`` of a RAS volume that
is ``np.flip(m.T)``, i.e. ``np.rot90(m)`` mirrored left-right; plain ``np.rot90`` would be the neurological
convention, which shows the left-right mirror image of the DICOM slice of the same scan. NIfTI carries no
modality, so ``hounsfield`` is False even for a CT volume: use a custom window
(``data.preprocess.window_center``/``window_width``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ._decode_common import _DECODE_ERRORS, Decoded, _frame_index

__all__ = ["read_nifti"]


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
    zooms = [float(z) for z in img.header.get_zooms()[:3]] + [1.0] * (3 - min(3, len(img.header.get_zooms())))
    ras = [zooms[int(np.flatnonzero(ornt[:, 0] == a)[0])] if a < len(shape) else 1.0 for a in range(3)]
    in_plane = [ras[a] for a in range(3) if a != slice_axis]  # displayed rows come from the higher RAS axis
    return Decoded(pixels=np.ascontiguousarray(_display(m))[..., None], source="nifti", modality=None,
                   hounsfield=False, window=None, bit_depth=bits, value_range=None, n_frames=n,
                   spacing=(in_plane[1], in_plane[0]))


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

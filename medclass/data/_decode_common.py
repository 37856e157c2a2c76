"""What the decoders share: the :class:`Decoded` result, the frame index, and the errors a damaged file raises.

:mod:`medclass.data.readers` (the dispatcher and Pillow), :mod:`medclass.data.dicom` and
:mod:`medclass.data.nifti` all build on this module, which imports none of them, so the three need no
import cycle. Import the public names from :mod:`medclass.data.readers`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["Decoded", "SUPPORTED"]

SUPPORTED = "PNG, JPEG, TIFF, BMP, DICOM and NIfTI (.nii, .nii.gz) are supported"

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
        photometric: the DICOM Photometric Interpretation as stored (``MONOCHROME1``, ``MONOCHROME2``, ``RGB``,
            ``YBR_FULL``, ``PALETTE COLOR``, ...), else None.
        spacing: pixel spacing in mm (rows, columns): DICOM Pixel Spacing (or Imager Pixel Spacing), the NIfTI
            voxel size in the slice's plane; None when the file does not say.
    """

    pixels: np.ndarray
    source: str
    modality: str | None
    hounsfield: bool
    window: tuple[float, float] | None
    bit_depth: int
    value_range: tuple[float, float] | None
    n_frames: int
    photometric: str | None = None
    spacing: tuple[float, float] | None = None

    def __repr__(self) -> str:  # the pixel array would flood logs
        return (f"Decoded(shape={self.pixels.shape}, source={self.source!r}, modality={self.modality!r}, "
                f"hounsfield={self.hounsfield}, window={self.window}, bit_depth={self.bit_depth}, "
                f"value_range={self.value_range}, n_frames={self.n_frames}, photometric={self.photometric!r}, "
                f"spacing={self.spacing})")


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

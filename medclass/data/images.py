"""Reading ordinary image files (PNG, JPEG, TIFF, BMP) into uint8 arrays, and conforming any image
to the size and channel count a model was trained on.

Conversion mirrors how MedMNIST built its 2D images: a non-square image is centre-cropped to a square,
then resized with bicubic interpolation (Pillow applies an antialiasing filter when it shrinks).
Colour becomes grey with ITU-R 601 luma weights (Pillow's ``L`` mode); grey becomes colour by
repeating the channel.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError

__all__ = ["read_image", "pil_to_array", "conform"]

_MODES_8BIT = {"L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr", "1"}


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as uint8 ``(H, W, C)`` with C = 1 (grey) or 3 (colour)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Image '{path}' does not exist.")
    try:
        with Image.open(path) as im:
            im.load()
            return pil_to_array(im, str(path))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"Image '{path}' could not be read ({e}). Is it a corrupt or truncated file, "
                        f"or not an image? PNG, JPEG, TIFF and BMP are supported.") from None


def pil_to_array(im: Image.Image, where: str) -> np.ndarray:
    if im.mode not in _MODES_8BIT:
        raise DataError(f"Image '{where}' has pixel mode {im.mode!r} (e.g. 16-bit or float). Convert it to 8-bit "
                        f"the way the training images were made (e.g. a display window), then predict again.")
    if im.mode in ("L", "LA", "1") or (im.mode == "P" and _palette_is_grey(im)):
        return np.asarray(im.convert("L"))[..., None]
    return np.asarray(im.convert("RGB"))


def _palette_is_grey(im: Image.Image) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def conform(image: np.ndarray, size: int, channels: int, where: str = "image") -> np.ndarray:
    """Centre-crop to a square, resize to ``size`` and convert to ``channels``: uint8 ``(size, size, channels)``."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise DataError(f"{where}: pixel values must be uint8 (0-255) like the training images; got dtype "
                        f"{a.dtype}. Convert with e.g. np.clip(x, 0, 255).astype(np.uint8) if that is what they mean.")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise DataError(f"{where}: expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array; got shape {a.shape}.")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise DataError(f"{where}: image is {a.shape[0]}x{a.shape[1]} pixels; too small to classify.")
    if a.shape[2] == 4:
        a = a[..., :3]
    h, w = a.shape[:2]
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        a = a[top:top + s, left:left + s]
    if a.shape[2] != channels:
        im = Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)
        a = np.asarray(im.convert("L" if channels == 1 else "RGB"))
        a = a[..., None] if a.ndim == 2 else a
    if a.shape[0] != size:
        im = Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)
        a = np.asarray(im.resize((size, size), Image.Resampling.BICUBIC))
        a = a[..., None] if a.ndim == 2 else a
    return np.ascontiguousarray(a)

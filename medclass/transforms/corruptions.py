"""MedMNIST-C image corruptions on uint8 images, re-implemented: noise, blur, contrast, JPEG, pixelation, artefacts.

MedMNIST-C (Di Salvo, Doerrich & Ledig, "MedMNIST-C: Comprehensive benchmark and improved classifier robustness
by simulating realistic image corruptions", arXiv:2406.17536, 2024) chooses, for each MedMNIST dataset, the
corruptions an image of that modality plausibly suffers, each at five severities. This module re-implements the
corruption functions and the per-dataset severity parameters of the ``medmnistc`` package, version 0.1.0
(Apache-2.0, https://github.com/francescodisalvo05/medmnistc-api), following its files
``medmnistc/corruptions/{noise,compression,filter,enhance,microscopy}.py`` and the ``CORRUPTIONS_DS``,
``CORRUPTIONS_DS_FOLDS`` and ``DATASET_RGB`` tables of ``medmnistc/corruptions/registry.py``; the parameters
below are copied from there. The package is not a dependency: it pins scikit-image 0.23.2, medmnist 3.0.1 and
Wand (ImageMagick), which clash with medclass's own pins.

What is kept exactly: the formulas, the parameters per severity, the order of operations and the conversions
(like ``medmnistc``'s dataset manager, every corruption works on the RGB image; a greyscale image is replicated to
three channels first and converted back with Pillow's luminance formula afterwards, so noise drawn per channel
averages as it does there; intermediate floats are truncated to uint8 where ``medmnistc`` truncates). Where
``medmnistc`` calls Pillow, scikit-image or SciPy, so does this module. The differences, each marked where made:

- randomness: one ``numpy.random.Generator`` per image, derived from a seed, the corruption and the severity
  (:func:`image_rng`), instead of NumPy's and Python's global state, so a corrupted set repeats exactly;
- motion blur: ImageMagick's ``MotionBlurImage`` (through Wand in ``medmnistc``) written as a weighted sum of
  shifted images, the same one-sided Gaussian kernel along the same random angle;
- Gaussian blur (torchvision), defocus blur's kernel smoothing and filtering (OpenCV) and black corner's disk
  (OpenCV) written with SciPy and NumPy; Gaussian blur agrees with torchvision to within one grey level;
- ``stain_deposit`` (needs the package's ink masks) and ``characters`` (OpenCV's Hershey font) are not
  re-implemented; the sets that list them (PathMNIST, BloodMNIST, DermaMNIST) report them as skipped.

Image size: ``medmnistc`` corrupts the 224 x 224 MedMNIST+ images. Here a corruption applies to the image it is
given, at that image's size, with the same parameters. Parameters counted in pixels (blur kernels, bubble radii,
the JPEG 8 x 8 block) and the pixelation factor therefore act more strongly on smaller images than in the
published benchmark: at 28 px the blurs, pixelation and JPEG are a harsher test; at 224 px this is MedMNIST-C.

A set of corruptions is chosen for a dataset by :func:`choose_corruption_set`: a MedMNIST name maps to its own
MedMNIST-C set; otherwise the preprocessing preset or the DICOM modality picks the set of the closest
MedMNIST modality (:data:`PRESET_SETS`, :data:`DICOM_MODALITY_SETS`), else the ``generic`` set.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance
from scipy import ndimage
from skimage.color import hsv2rgb, rgb2hsv
from skimage.util import random_noise

from ..errors import ConfigError, did_you_mean

__all__ = ["CORRUPTION_SETS", "DICOM_MODALITY_SETS", "FAMILIES", "MEDMNISTC_VERSION", "PRESET_SETS", "SEVERITIES",
           "Corruption", "CorruptionSet", "choose_corruption_set", "corrupt_images", "get_corruption_set", "image_rng"]

MEDMNISTC_VERSION = "0.1.0"
SEVERITIES = (1, 2, 3, 4, 5)


# --- the corruption functions: uint8 (H, W, 3) RGB in, uint8 (H, W, 3) out ---------------------------------


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """``medmnistc``'s ``(np.clip(x, 0, 1) * 255).astype(np.uint8)``: truncation, not rounding."""
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def _pixelate(img: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    pil = Image.fromarray(img)
    w, h = pil.size
    # max(1, .): medmnistc never reaches a zero side at 224 px; a small image could
    small = pil.resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.BOX)
    return np.asarray(small.resize((w, h), Image.BOX))


def _jpeg(img: np.ndarray, quality: int, rng: np.random.Generator) -> np.ndarray:
    buf = BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _gaussian_noise(img: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    x = img / 255.0
    return _to_uint8(x + rng.normal(size=x.shape, scale=c))


def _speckle_noise(img: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    x = img / 255.0
    return _to_uint8(x + x * rng.normal(size=x.shape, scale=c))


def _impulse_noise(img: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    return _to_uint8(random_noise(img / 255.0, mode="s&p", amount=amount, rng=rng))


def _shot_noise(img: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    x = img / 255.0
    return _to_uint8(rng.poisson(x * photons) / photons)


def _gaussian_blur(img: np.ndarray, kernel: int, rng: np.random.Generator) -> np.ndarray:
    # torchvision's gaussian_blur (medmnistc: TF.gaussian_blur(img, kernel_size=k)): sigma from the kernel size,
    # a separable kernel on linspace(-(k-1)/2, (k-1)/2, k), reflect padding (SciPy's "mirror"), float32, rounded
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    t = np.linspace(-(kernel - 1) * 0.5, (kernel - 1) * 0.5, kernel)
    k1 = np.exp(-0.5 * (t / sigma) ** 2).astype(np.float32)
    k1 /= k1.sum()
    x = img.astype(np.float32)
    x = ndimage.correlate1d(x, k1, axis=0, mode="mirror")
    x = ndimage.correlate1d(x, k1, axis=1, mode="mirror")
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _motion_blur(img: np.ndarray, radius_sigma: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    # ImageMagick's MotionBlurImage (MagickCore/effect.c), which medmnistc calls through Wand, written as a sum of
    # shifted images: kernel width 2*ceil(radius)+1 (GetOptimalKernelWidth1D), a one-sided Gaussian
    # exp(-i^2 / (2 sigma^2)) normalised, tap i read at offset (ceil(i cos a - 0.5), ceil(i sin a - 0.5)), edge
    # pixels repeated outside the image (ImageMagick's default virtual-pixel method); the angle is uniform in
    # [-45, 45) degrees, as in medmnistc; truncated to 8 bits as ImageMagick 6 (Q16) writes it. Checked against
    # ImageMagick 6.9.11's `convert -motion-blur RxS+A`: equal but for one grey level on about 0.1% of pixels.
    radius, sigma = radius_sigma
    angle = math.radians(rng.uniform(-45, 45))
    width = int(2 * math.ceil(radius) + 1)
    i = np.arange(width, dtype=np.float64)
    kernel = np.exp(-(i * i) / (2.0 * sigma * sigma))
    kernel /= kernel.sum()
    h, w = img.shape[:2]
    pad = width
    padded = np.pad(img.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.zeros(img.shape, dtype=np.float64)
    for j in range(width):
        dx = math.ceil(j * math.cos(angle) - 0.5)
        dy = math.ceil(j * math.sin(angle) - 0.5)
        out += kernel[j] * padded[pad + dy: pad + dy + h, pad + dx: pad + dx + w]
    return np.clip(np.floor(out + 1e-6), 0, 255).astype(np.uint8)


def _gaussian_kernel_1d(ksize: int, sigma: float) -> np.ndarray:
    """OpenCV's getGaussianKernel for sigma > 0."""
    t = np.arange(ksize) - (ksize - 1) / 2
    g = np.exp(-(t * t) / (2 * sigma * sigma))
    return g / g.sum()


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    # medmnistc's disk(): an aliased disk on a 17 x 17 grid (radius <= 8) smoothed by cv2.GaussianBlur with a 3 x 3
    # kernel (5 x 5 above radius 8); cv2's default border (reflect-101) is SciPy's "mirror"
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), 3
    else:
        grid, ksize = np.arange(-radius, radius + 1), 5
    x, y = np.meshgrid(grid, grid)
    d = np.array((x ** 2 + y ** 2) <= radius ** 2, dtype=np.float32)
    d /= np.sum(d)
    g = _gaussian_kernel_1d(ksize, alias_blur)
    d = ndimage.correlate1d(d.astype(np.float64), g, axis=0, mode="mirror")
    return ndimage.correlate1d(d, g, axis=1, mode="mirror").astype(np.float32)


def _defocus_blur(img: np.ndarray, radius_alias: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    # cv2.filter2D per channel: correlation with the disk, reflect-101 border (SciPy's "mirror")
    kernel = _disk(*radius_alias)
    x = img / 255.0
    out = np.stack([ndimage.correlate(x[..., c], kernel, mode="mirror") for c in range(3)], axis=-1)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    h = x.shape[0]
    ch = int(np.ceil(h / factor))
    top = (h - ch) // 2
    z = ndimage.zoom(x[top:top + ch, top:top + ch], (factor, factor, 1), order=1)
    trim = (z.shape[0] - h) // 2
    return z[trim:trim + h, trim:trim + h]


def _zoom_blur(img: np.ndarray, arange: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    factors = np.arange(*arange)  # medmnistc's np.arange(1, 1.11, 0.01) and so on, as (start, stop, step)
    x = (img / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for f in factors:
        out += _clipped_zoom(x, f)
    return _to_uint8((x + out) / (len(factors) + 1))


def _brightness(img: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(ImageEnhance.Brightness(Image.fromarray(img)).enhance(factor))


def _contrast(img: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(ImageEnhance.Contrast(Image.fromarray(img)).enhance(factor))


def _gamma(img: np.ndarray, gamma: float, rng: np.random.Generator) -> np.ndarray:
    # torchvision's adjust_gamma on a PIL image (gain 1): a lookup table, truncated
    lut = np.array([int((255 + 1 - 1e-3) * pow(v / 255.0, gamma)) for v in range(256)], dtype=np.uint8)
    return lut[img]


def _saturate(img: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
    hsv = rgb2hsv(img / 255.0)
    hsv[..., 1] = np.clip(hsv[..., 1] + shift, 0, 1)
    return _to_uint8(hsv2rgb(hsv))


def _bubble(img: np.ndarray, radius_count: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    # translucent white discs drawn on an RGBA layer and pasted through its alpha, as medmnistc does; the radius is
    # capped at half the image side (only reached below 224 px, where medmnistc's random.randint would fail)
    max_radius, max_bubbles = radius_count
    out = Image.fromarray(img)
    width, height = out.size
    layer = Image.new("RGBA", out.size, (255, 255, 255, 0))
    draw = ImageDraw.Draw(layer)
    border = 2
    for _ in range(int(rng.integers(7, max_bubbles + 1))):
        r = int(rng.integers(3, max_radius + 1))
        r = min(r, width // 2, height // 2)
        x, y = int(rng.integers(r, width - r + 1)), int(rng.integers(r, height - r + 1))
        draw.ellipse((x - r - border, y - r - border, x + r + border, y + r + border), fill=(255, 255, 255, 130))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, 100))
    out.paste(layer, (0, 0), layer)
    return np.asarray(out)


def _black_corner(img: np.ndarray, multiplier: float, rng: np.random.Generator) -> np.ndarray:
    # everything outside a centred disk turned black (dermatoscope vignetting); cv2.circle's filled disk written as
    # x^2 + y^2 <= r^2, which can differ from OpenCV's rasterisation on the rim
    h, w = img.shape[:2]
    cx, cy = w // 2, h // 2
    r = int(min(cx, cy, w - cx, h - cy) * multiplier)
    yy, xx = np.mgrid[:h, :w]
    out = img.copy()
    out[(xx - cx) ** 2 + (yy - cy) ** 2 > r * r] = 0
    return out


CorruptionFn = Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]

# name -> (family, function). Families are MedMNIST-C's CORRUPTIONS_DS_FOLDS; None: not re-implemented (module doc)
_KINDS: dict[str, tuple[str, CorruptionFn | None]] = {
    "pixelate": ("digital", _pixelate), "jpeg_compression": ("digital", _jpeg),
    "gaussian_noise": ("noise", _gaussian_noise), "speckle_noise": ("noise", _speckle_noise),
    "impulse_noise": ("noise", _impulse_noise), "shot_noise": ("noise", _shot_noise),
    "defocus_blur": ("blur", _defocus_blur), "motion_blur": ("blur", _motion_blur),
    "zoom_blur": ("blur", _zoom_blur), "gaussian_blur": ("blur", _gaussian_blur),
    "brightness_up": ("color", _brightness), "brightness_down": ("color", _brightness),
    "contrast_up": ("color", _contrast), "contrast_down": ("color", _contrast), "saturate": ("color", _saturate),
    "gamma_corr_up": ("task-specific", _gamma), "gamma_corr_down": ("task-specific", _gamma),
    "bubble": ("task-specific", _bubble), "black_corner": ("task-specific", _black_corner),
    "stain_deposit": ("task-specific", None), "characters": ("task-specific", None),
}
FAMILIES = ("digital", "noise", "blur", "color", "task-specific")
_NOT_REIMPLEMENTED = {
    "stain_deposit": "not re-implemented: it pastes ink masks shipped as data with medmnistc",
    "characters": "not re-implemented: it draws text with OpenCV's Hershey font",
}


# --- the per-dataset sets: medmnistc 0.1.0, corruptions/registry.py, CORRUPTIONS_DS (five severities each) ------

_CHEST = {  # chestmnist; "generic" below reuses its digital, noise, blur and colour rows
    "pixelate": (0.30, 0.25, 0.20, 0.15, 0.10), "jpeg_compression": (50, 30, 15, 10, 7),
    "gaussian_noise": (0.04, 0.08, 0.12, 0.18, 0.26), "speckle_noise": (0.05, 0.15, 0.2, 0.35, 0.45),
    "impulse_noise": (0.01, 0.03, 0.06, 0.09, 0.17), "shot_noise": (60, 25, 18, 10, 5),
    "gaussian_blur": (3, 5, 7, 9, 11),  # medmnistc lists a sixth value (13) that its five severities never use
    "brightness_up": (1.1, 1.2, 1.3, 1.4, 1.5), "brightness_down": (0.9, 0.8, 0.7, 0.6, 0.5),
    "contrast_up": (1.1, 1.2, 1.3, 1.4, 1.6), "contrast_down": (0.9, 0.8, 0.7, 0.6, 0.4),
    "gamma_corr_up": (1.1, 1.2, 1.3, 1.4, 1.6), "gamma_corr_down": (0.9, 0.8, 0.7, 0.6, 0.4),
}
_ORGAN = {  # organamnist, organcmnist and organsmnist share one set
    "pixelate": (0.7, 0.6, 0.5, 0.40, 0.35), "jpeg_compression": (50, 30, 15, 10, 7),
    "gaussian_noise": (0.04, 0.08, 0.12, 0.16, 0.20), "speckle_noise": (0.05, 0.10, 0.20, 0.30, 0.40),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.08), "shot_noise": (200, 100, 50, 25, 15),
    "gaussian_blur": (11, 13, 15, 17, 21),
    "brightness_up": (1.2, 1.3, 1.4, 1.5, 1.6), "brightness_down": (0.8, 0.75, 0.7, 0.65, 0.60),
    "contrast_up": (1.3, 1.4, 1.6, 1.7, 1.8), "contrast_down": (0.8, 0.7, 0.6, 0.55, 0.5),
    "gamma_corr_up": (1.3, 1.4, 1.6, 1.8, 2.0), "gamma_corr_down": (0.9, 0.8, 0.7, 0.6, 0.4),
}
_PARAMS: dict[str, dict[str, tuple]] = {
    "pathmnist": {
        "pixelate": (0.8, 0.6, 0.40, 0.30, 0.25), "jpeg_compression": (50, 30, 15, 10, 7),
        "defocus_blur": ((3, 0.1), (4, 0.1), (5, 0.2), (6, 0.2), (7, 0.3)),
        "motion_blur": ((5, 5), (10, 5), (15, 5), (15, 8), (15, 12)),
        "brightness_up": (1.1, 1.15, 1.2, 1.22, 1.25), "brightness_down": (0.85, 0.80, 0.75, 0.72, 0.70),
        "contrast_up": (1.1, 1.2, 1.3, 1.4, 1.6), "contrast_down": (0.8, 0.7, 0.6, 0.55, 0.5),
        "saturate": (0.05, 0.10, 0.15, 0.20, 0.25), "stain_deposit": (1, 2, 3, 4, 5),
        "bubble": ((7, 15), (10, 15), (12, 15), (15, 20), (17, 25)),
    },
    "bloodmnist": {
        "pixelate": (0.6, 0.5, 0.40, 0.30, 0.25), "jpeg_compression": (50, 30, 15, 10, 7),
        "defocus_blur": ((2, 0.01), (3, 0.1), (4, 0.1), (5, 0.1), (6, 0.1)),
        "motion_blur": ((3, 3), (5, 5), (10, 5), (10, 7), (10, 9)),
        "brightness_up": (1.1, 1.2, 1.3, 1.35, 1.4), "brightness_down": (0.9, 0.8, 0.7, 0.6, 0.5),
        "contrast_up": (1.1, 1.15, 1.2, 1.25, 1.3), "contrast_down": (0.9, 0.8, 0.7, 0.6, 0.5),
        "saturate": (0.05, 0.10, 0.15, 0.17, 0.20), "stain_deposit": (1, 2, 3, 3, 3),
        "bubble": ((5, 10), (7, 10), (10, 10), (12, 12), (15, 12)),
    },
    "dermamnist": {
        "pixelate": (0.7, 0.5, 0.40, 0.30, 0.25), "jpeg_compression": (30, 20, 15, 10, 7),
        "gaussian_noise": (0.04, .08, .12, 0.18, 0.26), "speckle_noise": (0.05, 0.15, 0.2, 0.35, 0.45),
        "impulse_noise": (0.01, 0.03, 0.06, 0.09, 0.17), "shot_noise": (60, 25, 18, 10, 5),
        "defocus_blur": ((4, 0.1), (5, 0.2), (6, 0.3), (7, 0.4), (8, 0.5)),
        "motion_blur": ((10, 5), (15, 5), (15, 8), (15, 12), (20, 15)),
        "zoom_blur": ((1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)),
        "brightness_up": (1.1, 1.2, 1.3, 1.4, 1.5), "brightness_down": (0.9, 0.8, 0.7, 0.6, 0.5),
        "contrast_up": (1.1, 1.2, 1.3, 1.4, 1.6), "contrast_down": (0.8, 0.7, 0.6, 0.5, 0.4),
        "black_corner": (1.10, 1.05, 1.00, 0.90, 0.95),  # sic: severity 5 is milder than 4 in medmnistc
        "characters": ((1, 6, 0.14), (2, 7, 0.15), (3, 8, 0.16), (4, 9, 0.17), (6, 10, 0.18)),
    },
    "retinamnist": {
        "pixelate": (0.8, 0.60, 0.50, 0.40, 0.35), "jpeg_compression": (30, 25, 20, 10, 5),
        "gaussian_noise": (0.04, 0.08, 0.12, 0.16, 0.20), "speckle_noise": (0.10, 0.15, 0.20, 0.25, 0.30),
        # medmnistc lists a sixth value, (9, 0.6), that its five severities never use
        "defocus_blur": ((4, 0.1), (5, 0.2), (6, 0.3), (7, 0.4), (8, 0.5)),
        "motion_blur": ((8, 5), (15, 5), (15, 8), (15, 12), (20, 15)),
        "brightness_down": (0.9, 0.8, 0.7, 0.6, 0.5), "contrast_down": (0.9, 0.8, 0.7, 0.6, 0.4),
    },
    "tissuemnist": {
        "pixelate": (0.40, 0.30, 0.20, 0.15, 0.10), "jpeg_compression": (25, 20, 15, 10, 7),
        "impulse_noise": (0.01, 0.015, 0.02, 0.025, 0.03), "gaussian_blur": (13, 15, 17, 21, 25),
        "brightness_up": (1.3, 1.4, 1.5, 1.6, 1.7), "brightness_down": (0.8, 0.7, 0.6, 0.5, 0.4),
        "contrast_up": (1.1, 1.2, 1.3, 1.4, 1.6), "contrast_down": (0.9, 0.8, 0.7, 0.6, 0.4),
    },
    "octmnist": {
        "pixelate": (0.30, 0.25, 0.20, 0.15, 0.10), "jpeg_compression": (30, 15, 10, 7, 5),
        "speckle_noise": (0.15, 0.30, 0.40, 0.50, 0.60),
        "defocus_blur": ((0.5, 0.6), (1, 0.5), (1.5, 0.1), (2.0, 0.5), (2.5, 0.1)),
        "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
        "contrast_down": (0.6, 0.4, 0.3, 0.2, 0.15),
    },
    "breastmnist": {
        "pixelate": (0.30, 0.25, 0.20, 0.15, 0.10), "jpeg_compression": (50, 30, 15, 10, 7),
        "speckle_noise": (0.10, 0.15, 0.20, 0.25, 0.30),
        "motion_blur": ((5, 5), (9, 7), (9, 10), (13, 10), (17, 12)),
        "brightness_up": (1.4, 1.5, 1.6, 1.8, 2.0), "brightness_down": (0.55, 0.5, 0.45, 0.4, 0.3),
        "contrast_down": (0.9, 0.8, 0.7, 0.6, 0.4),
    },
    "chestmnist": _CHEST,
    "pneumoniamnist": {
        "pixelate": (0.8, 0.7, 0.6, 0.5, 0.40), "jpeg_compression": (50, 30, 15, 10, 7),
        "gaussian_noise": (0.04, 0.05, 0.06, 0.07, 0.08), "speckle_noise": (0.05, 0.07, 0.10, 0.15, 0.20),
        "impulse_noise": (0.005, 0.01, 0.013, 0.017, 0.02), "shot_noise": (300, 200, 150, 100, 80),
        "gaussian_blur": (3, 5, 7, 9, 11),  # medmnistc lists a sixth value (13) that its five severities never use
        "brightness_up": (1.1, 1.2, 1.3, 1.4, 1.5), "brightness_down": (0.9, 0.8, 0.7, 0.6, 0.5),
        "contrast_up": (1.1, 1.2, 1.3, 1.4, 1.6), "contrast_down": (0.9, 0.8, 0.7, 0.6, 0.4),
        "gamma_corr_up": (1.1, 1.2, 1.3, 1.4, 1.6), "gamma_corr_down": (0.9, 0.8, 0.7, 0.6, 0.4),
    },
    "organamnist": _ORGAN, "organcmnist": _ORGAN, "organsmnist": _ORGAN,
    # medclass's own, for images of no MedMNIST modality: ChestMNIST-C's modality-agnostic rows (the set with the
    # most of them), without its X-ray-specific gamma corrections
    "generic": {k: v for k, v in _CHEST.items() if not k.startswith("gamma")},
}
_COLOUR = {"pathmnist", "bloodmnist", "dermamnist", "retinamnist"}  # medmnistc's DATASET_RGB; the rest are grey
_MODALITY = {"pathmnist": "colon pathology", "bloodmnist": "blood cell microscopy", "dermamnist": "dermatoscope",
             "retinamnist": "fundus photograph", "tissuemnist": "kidney cortex microscopy", "octmnist": "retinal OCT",
             "breastmnist": "breast ultrasound", "chestmnist": "chest X-ray", "pneumoniamnist": "chest X-ray",
             "organamnist": "abdominal CT", "organcmnist": "abdominal CT", "organsmnist": "abdominal CT",
             "generic": "any (modality-agnostic corruptions)"}

# a user's own images: the preprocessing preset, else the DICOM modality, picks the closest MedMNIST-C set
PRESET_SETS = {"xray": "chestmnist", "ct-lung": "organamnist", "ct-mediastinum": "organamnist",
               "ct-bone": "organamnist", "ct-brain": "organamnist", "ct-abdomen": "organamnist",
               "ct-multi": "organamnist", "fundus": "retinamnist", "dermatology": "dermamnist"}
DICOM_MODALITY_SETS = {"CR": "chestmnist", "DX": "chestmnist", "CT": "organamnist", "US": "breastmnist",
                       "OPT": "octmnist", "OP": "retinamnist", "SM": "pathmnist"}


# --- the public objects ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corruption:
    """One MedMNIST-C corruption with the five severity parameters of one set.

    Call it on a uint8 image ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``: the result has the same shape and dtype.

    Attributes:
        name: MedMNIST-C's name (``gaussian_noise``, ``motion_blur``, ...).
        family: ``digital``, ``noise``, ``blur``, ``color`` or ``task-specific`` (MedMNIST-C's grouping).
        params: the parameter of severities 1 to 5.
        colour: the set is for colour images; a greyscale set's result is converted to grey (luminance), as
            ``medmnistc`` does for its greyscale datasets.
    """

    name: str
    family: str
    params: tuple
    colour: bool = False

    def __call__(self, image: np.ndarray, severity: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """The corrupted copy of ``image`` at ``severity`` (1-5), drawing from ``rng`` (a Generator, a seed, or
        None for fresh entropy; :func:`image_rng` gives the one a corrupted set uses)."""
        if severity not in SEVERITIES:
            raise ConfigError(f"Severity must be one of {', '.join(map(str, SEVERITIES))} (MedMNIST-C's five). Got "
                              f"{severity!r} instead.")
        a = np.asarray(image)
        if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3))):
            raise ValueError(f"{self.name}: expected a uint8 image of shape (H, W), (H, W, 1) or (H, W, 3); got "
                             f"{a.dtype} {a.shape}.")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        grey_in = a.ndim == 2 or a.shape[2] == 1
        rgb = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2) if grey_in else a
        out = np.ascontiguousarray(_KINDS[self.name][1](np.ascontiguousarray(rgb), self.params[severity - 1], gen))
        if grey_in or not self.colour:  # medmnistc: Image.fromarray(x).convert("L") for greyscale datasets
            grey = np.asarray(Image.fromarray(out).convert("L"))
            out = grey.reshape(a.shape) if grey_in else np.repeat(grey[..., None], 3, axis=2)
        return out


@dataclass(frozen=True)
class CorruptionSet:
    """The corruptions MedMNIST-C chose for one dataset (or medclass's ``generic`` set).

    Attributes:
        name: the MedMNIST dataset whose set this is, or ``generic``.
        modality: that dataset's imaging modality, in words.
        corruptions: name -> :class:`Corruption`, in MedMNIST-C's order.
        skipped: corruptions the set lists but this module does not re-implement -> why.
    """

    name: str
    modality: str
    corruptions: dict[str, Corruption] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


CORRUPTION_SETS = tuple(_PARAMS)


def get_corruption_set(name: str) -> CorruptionSet:
    """The corruption set of a MedMNIST dataset (``pneumoniamnist``, ...) or ``generic``.

    Raises:
        ConfigError: an unknown name, with the nearest match and the available sets.
    """
    key = str(name).lower()
    if key not in _PARAMS:
        raise ConfigError(f"No MedMNIST-C corruption set is called {name!r}.{did_you_mean(key, _PARAMS)} Available: "
                          f"{', '.join(_PARAMS)}.")
    colour = key in _COLOUR
    corruptions, skipped = {}, {}
    for cname, params in _PARAMS[key].items():
        family, fn = _KINDS[cname]
        if fn is None:
            skipped[cname] = _NOT_REIMPLEMENTED[cname]
        else:
            corruptions[cname] = Corruption(cname, family, tuple(params), colour)
    return CorruptionSet(key, _MODALITY[key], corruptions, skipped)


def choose_corruption_set(dataset: str, preset: str | None = None,
                          modalities: Iterable[str] = ()) -> tuple[str, str]:
    """The corruption set for a run's data, and what chose it: ``(set name, "the run's dataset, ...")``.

    A MedMNIST dataset gets its own MedMNIST-C set; other data the set of the closest MedMNIST modality, from the
    preprocessing preset (:data:`PRESET_SETS`), else from the DICOM modality of the training files
    (:data:`DICOM_MODALITY_SETS`, used only when all files share one); otherwise the ``generic`` set.
    """
    key = str(dataset).lower()
    if key in _PARAMS and key != "generic":
        return key, f"the run's dataset, {key} (MedMNIST-C's own set)"
    if preset in PRESET_SETS:
        s = PRESET_SETS[preset]
        return s, f"the preprocessing preset '{preset}' ({_MODALITY[s]}: MedMNIST-C's set for {s})"
    mods = sorted({str(m).upper() for m in modalities if m})
    if len(mods) == 1 and mods[0] in DICOM_MODALITY_SETS:
        s = DICOM_MODALITY_SETS[mods[0]]
        return s, f"the DICOM modality {mods[0]} of the training files ({_MODALITY[s]}: MedMNIST-C's set for {s})"
    return "generic", ("default: no MedMNIST modality is known for this data (the generic set: ChestMNIST-C's "
                       "digital, noise, blur and colour corruptions)")


def image_rng(seed: int, corruption: str, severity: int, index: int) -> np.random.Generator:
    """The generator of image ``index`` under ``corruption`` at ``severity``: independent of every other image and
    of the order images are processed in, so a corrupted set repeats exactly."""
    return np.random.default_rng([int(seed), zlib.crc32(corruption.encode()), int(severity), int(index)])


def corrupt_images(images: np.ndarray, corruption: Corruption, severity: int, seed: int = 0) -> np.ndarray:
    """``corruption`` at ``severity`` applied to every image of a uint8 ``(N, H, W, C)`` batch (a new array)."""
    out = np.empty_like(images)
    for i in range(len(images)):
        out[i] = corruption(images[i], severity, image_rng(seed, corruption.name, severity, i))
    return out

"""Decode-time preprocessing: a decoded file (DICOM, NIfTI slice, PNG/JPEG/TIFF) becomes a uint8 image at
the training size. It runs once per image, and the result is cached, so each step may cost a few
milliseconds. ``data.preprocess`` (:class:`~medclass.config.PreprocessConfig`) chooses the steps; a
``preset`` bundles the usual ones for a modality and explicit switches add to it (:func:`resolve_steps`).

The steps, in order:

1. **Intensity to [0, 1].** The first that applies:

   - a *window* (centre, width): ``window_center``/``window_width`` (a custom window, in the file's own
     units), or ``windows`` (names of CT windows, several stacked as channels), or a CT preset
     (``ct-lung`` is the lung window; ``ct-multi`` stacks lung, mediastinum and bone as 3 channels).
     :func:`window` maps ``center - width/2 .. center + width/2`` linearly to 0..1 and clips. A named CT
     window needs pixels in Hounsfield units; any other file is refused with a :class:`DataError`.
   - ``zscore_foreground`` (preset ``mri``): the foreground is every pixel above an Otsu threshold
     (:func:`skimage.filters.threshold_otsu`; more robust than ``> 0`` because MR background is noise,
     not zeros); pixels are z-scored with the foreground mean and std, z in [-3, 3] is mapped to
     [0, 1] (so the foreground mean lands on 0.5, uint8 128), and the background is set to 0.
   - the file's own display window (DICOM Window Center/Width), unless the preset is ``xray``;
   - min-max: an 8-bit file (``bit_depth == 8`` with a known ``value_range``) is divided by 255 and
     otherwise left as it is, so a PNG dataset looks exactly like MedMNIST; anything else (16-bit,
     DICOM, NIfTI) is stretched from its 0.5th to its 99.5th percentile, which ignores a few hot or
     dead pixels and burnt-in text. A constant image becomes all zeros.

2. **Modality steps** on the [0, 1] image, in the order below. They run at a working resolution: an image
   whose shorter side exceeds ``max(2 * size, 512)`` is first shrunk to that (Pillow bicubic), which keeps
   a 12-megapixel fundus photograph at about a hundred milliseconds instead of seconds and changes little,
   as CLAHE's tiles are a fixed fraction (1/8) of the image.

   - ``fov_crop`` (preset ``fundus``): the circular field of view is the set of pixels brighter than
     ``FOV_THRESHOLD`` in the red channel (grey for grey images); the image is cropped to its bounding
     box (rows and columns where at least 1% of pixels are in the field, which ignores JPEG noise in
     the black border; found at full resolution) and padded with black to a square, so a disc cut at
     the top and bottom stays round and centred. An image with no such pixels is kept whole.
   - ``color_constancy`` (preset ``dermatology``): shades-of-grey (Finlayson & Trezzi, "Shades of Gray
     and Colour Constancy", CIC 2004) with Minkowski norm p = 6, the method of the ISIC challenge
     winners (Barata et al., IEEE JBHI 2015). Each channel is divided by its p-norm, so a uniform
     colour cast is removed. Grey images are unchanged.
   - ``clahe`` (presets ``xray`` and ``fundus``): contrast-limited adaptive histogram equalisation,
     :func:`skimage.exposure.equalize_adapthist` with ``clip_limit=clahe_clip``. Grey images and
     stacked CT windows are equalised channel by channel; colour photographs on their HSV value
     (``max(R, G, B)``), with R, G and B scaled by the same factor so hue and saturation are kept --
     what scikit-image does for RGB input, without its colour-space round trip (the same result to 1e-7, 4x faster). A
     constant image is left as it is.

3. **Geometry** to ``(size, size)``: ``crop`` takes the centre square then resizes (as MedMNIST and
   :func:`medclass.data.images.conform` do); ``pad`` letterboxes with black to a square, keeping the
   whole image and its aspect; ``stretch`` resizes without keeping the aspect. Resizing is Pillow's
   bicubic, antialiased when shrinking. An 8-bit image that no step changed is resized as uint8, so it
   equals ``conform`` bit for bit; everything else is resized in Pillow's 32-bit float mode ``F``
   (the same kernel) and clipped to [0, 1], so no precision is lost before the final rounding.

4. **Channels and uint8.** ``channels=None`` keeps the natural count: 1 for grey, 3 for colour or three
   stacked windows. Grey to 3 channels repeats the channel (for ImageNet models); colour to 1 channel
   is ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B, Pillow's ``L``). Values become ``round(x * 255)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from skimage.exposure import equalize_adapthist
from skimage.filters import threshold_otsu

from ..config import CT_WINDOWS, PRESETS, PreprocessConfig
from ..errors import ConfigError, DataError, did_you_mean

__all__ = ["CT_WINDOW_SETTINGS", "FOV_THRESHOLD", "Steps", "output_channels", "preprocess", "replace_non_finite",
           "resolve_steps", "window"]

logger = logging.getLogger(__name__)

# (centre, width) in Hounsfield units. Common display windows as listed by Radiopaedia, "Windowing (CT)"
# (https://radiopaedia.org/articles/windowing-ct): lung W1500 L-600, mediastinum W350 L50, bone W1800 L400,
# brain W80 L40, abdomen (soft tissue) W400 L40.
CT_WINDOW_SETTINGS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "abdomen": (40.0, 400.0),
}

FOV_THRESHOLD = 0.04  # about 10/255: fundus borders are black up to JPEG noise, the retina is far brighter in red
_PERCENTILES = (0.5, 99.5)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601
_MAX_STAT_PIXELS = 1 << 20  # statistics (percentiles, Otsu, p-norms) on a strided sample of at most ~1M pixels

_PRESET_WINDOWS = {"ct-multi": ("lung", "mediastinum", "bone")}
_PRESET_WINDOWS.update({f"ct-{name}": (name,) for name in CT_WINDOWS})


@dataclass(frozen=True)
class Steps:
    """The steps one :class:`~medclass.config.PreprocessConfig` resolves to (preset expanded).

    Attributes:
        intensity: ``window`` (apply ``windows``), ``zscore`` (foreground z-score), ``minmax`` (ignore the
            file's display window) or ``auto`` (the file's window if it has one, else min-max).
        windows: (centre, width) per output channel, for ``intensity == "window"``.
        window_names: a name per window (``lung``, ..., or ``custom``), for messages.
        needs_hu: the windows are CT windows in Hounsfield units.
        origin: the setting the intensity step came from, for messages (``preset ct-lung``).
    """

    intensity: str = "auto"
    windows: tuple[tuple[float, float], ...] = ()
    window_names: tuple[str, ...] = ()
    needs_hu: bool = False
    origin: str = "preset none"
    fov_crop: bool = False
    color_constancy: bool = False
    clahe: bool = False
    clahe_clip: float = 0.01
    resize: str = "crop"

    @property
    def modality_steps(self) -> bool:
        """Whether any step-2 operation runs (then the image is no longer plain 8-bit)."""
        return self.fov_crop or self.color_constancy or self.clahe

    def describe(self) -> str:
        """One line for logs and reports, e.g. ``lung+mediastinum+bone windows -> CLAHE -> crop``."""
        first = {"window": "+".join(self.window_names) + " window" + ("s" if len(self.windows) > 1 else ""),
                 "zscore": "foreground z-score", "minmax": "min-max", "auto": "file window or min-max"}
        parts = [first[self.intensity]]
        parts += [name for on, name in ((self.fov_crop, "FOV crop"), (self.color_constancy, "colour constancy"),
                                        (self.clahe, f"CLAHE {self.clahe_clip:g}")) if on]
        return " -> ".join(parts + [self.resize])


def resolve_steps(cfg: PreprocessConfig) -> Steps:
    """Expand ``cfg.preset`` and add the explicit switches.

    The intensity step has one slot: an explicit setting (custom window, ``windows`` or
    ``zscore_foreground``) replaces the preset's; two explicit ones together are a :class:`ConfigError`.
    """
    if cfg.preset not in PRESETS:
        raise ConfigError(f"data.preprocess.preset must be one of {', '.join(PRESETS)}. Got {cfg.preset!r} "
                          f"instead.{did_you_mean(cfg.preset, PRESETS)}")
    bad = [w for w in cfg.windows if w not in CT_WINDOW_SETTINGS]
    if bad:
        raise ConfigError(f"data.preprocess.windows: unknown CT window {bad[0]!r}.{did_you_mean(bad[0], CT_WINDOWS)} "
                          f"Known windows: {', '.join(CT_WINDOWS)}.")
    custom = cfg.window_center is not None or cfg.window_width is not None
    if custom and (cfg.window_center is None or cfg.window_width is None or not cfg.window_width > 0):
        raise ConfigError(f"data.preprocess.window_center and window_width must be given together, with a width > 0. "
                          f"Got center={cfg.window_center!r}, width={cfg.window_width!r}.")
    explicit = [name for name, on in (("window_center/window_width", custom), ("windows", bool(cfg.windows)),
                                      ("zscore_foreground", cfg.zscore_foreground)) if on]
    if len(explicit) > 1:
        raise ConfigError(f"data.preprocess: {' and '.join(explicit)} both set how intensities become 0-255; "
                          f"choose one.")
    if cfg.windows and len(cfg.windows) not in (1, 3):
        raise ConfigError(f"data.preprocess.windows: give 1 window, or 3 to stack as the channels of a colour "
                          f"image. Got {len(cfg.windows)} ({', '.join(cfg.windows)}).")

    kw: dict[str, Any] = {}
    if custom:
        kw = {"intensity": "window", "windows": ((float(cfg.window_center), float(cfg.window_width)),),
              "window_names": ("custom",), "origin": "window_center/window_width"}
    elif cfg.windows:
        kw = {"intensity": "window", "windows": tuple(CT_WINDOW_SETTINGS[w] for w in cfg.windows),
              "window_names": tuple(cfg.windows), "needs_hu": True, "origin": f"windows {', '.join(cfg.windows)}"}
    elif cfg.zscore_foreground or cfg.preset == "mri":
        kw = {"intensity": "zscore", "origin": "zscore_foreground" if cfg.zscore_foreground else "preset mri"}
    elif cfg.preset in _PRESET_WINDOWS:
        names = _PRESET_WINDOWS[cfg.preset]
        kw = {"intensity": "window", "windows": tuple(CT_WINDOW_SETTINGS[w] for w in names), "window_names": names,
              "needs_hu": True, "origin": f"preset {cfg.preset}"}
    elif cfg.preset == "xray":
        kw = {"intensity": "minmax", "origin": "preset xray"}
    return Steps(**kw, fov_crop=cfg.fov_crop or cfg.preset == "fundus",
                 color_constancy=cfg.color_constancy or cfg.preset == "dermatology",
                 clahe=cfg.clahe or cfg.preset in ("xray", "fundus"), clahe_clip=float(cfg.clahe_clip),
                 resize=cfg.resize)


def output_channels(cfg: PreprocessConfig, decoded_channels: int) -> int:
    """The natural channel count of a preprocessed image: the number of windows when several are stacked
    (3), 1 for a single window, else the decoded file's (1 grey, 3 colour)."""
    steps = resolve_steps(cfg)
    return len(steps.windows) if steps.windows else int(decoded_channels)


def window(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear display window: ``center - width/2`` -> 0, ``center + width/2`` -> 1, clipped; float32.

    This is the plain linear window; DICOM's "LINEAR" VOI function (PS3.3 C.11.2.1.2) differs from it by
    half a unit of centre and one of width, which is invisible at 8 bits.
    """
    if not width > 0:
        raise ConfigError(f"A display window needs a width > 0. Got width={width!r} (center={center!r}).")
    lo = center - width / 2.0
    out = (np.asarray(x, dtype=np.float32) - np.float32(lo)) / np.float32(width)
    return np.clip(out, 0.0, 1.0, out=out)


def preprocess(decoded: Any, cfg: PreprocessConfig, size: int, channels: int | None = None,
               where: str = "image") -> np.ndarray:
    """A decoded file as uint8 ``(size, size, channels)``, following the steps in the module docstring.

    Args:
        decoded: a :class:`medclass.data.readers.Decoded` or any object with its attributes (``pixels``
            float ``(H, W, C)``, ``modality``, ``hounsfield``, ``window``, ``bit_depth``, ``value_range``).
        cfg: the preprocessing settings (``data.preprocess``).
        size: side of the square output in pixels.
        channels: 1 or 3; None keeps the natural count (:func:`output_channels`).
        where: the file (and manifest row) named in error messages.

    Raises:
        DataError: a CT window on an image that is not in Hounsfield units, or unusable pixels.
        ConfigError: contradictory settings.
    """
    steps = resolve_steps(cfg)
    if int(size) < 1:
        raise ConfigError(f"{where}: the output size must be a positive number of pixels. Got {size!r}.")
    if channels not in (None, 1, 3):
        raise ConfigError(f"{where}: channels must be 1, 3 or None (natural). Got {channels!r}.")
    if len(steps.windows) > 1 and channels == 1:
        raise ConfigError(f"{where}: {steps.origin} stacks {len(steps.windows)} windows as channels, but 1 channel "
                          f"was requested. Use a single window, or 3 channels (data.channels=3).")
    x = _pixels(decoded, where)

    # 1. intensity to [0, 1]; `exact8` marks an 8-bit image still holding exactly its own values
    exact8 = False
    if steps.intensity == "window":
        if steps.needs_hu and not bool(getattr(decoded, "hounsfield", False)):
            raise DataError(
                f"{where}: {steps.origin} applies CT windows ({_window_text(steps)}) that need CT pixels in "
                f"Hounsfield units, but this file is not (source {getattr(decoded, 'source', '?')}, modality "
                f"{getattr(decoded, 'modality', None) or 'unknown'}). Use data.preprocess.preset=none (or xray for "
                f"radiographs), or a custom window_center/window_width in the file's own units.")
        if len(steps.windows) > 1 and x.shape[2] != 1:
            raise DataError(f"{where}: {steps.origin} stacks CT windows of a grey image, but it has "
                            f"{x.shape[2]} channels.")
        x = np.concatenate([window(x, c, w) for c, w in steps.windows], axis=2)
    elif steps.intensity == "zscore":
        x = _zscore_foreground(x)
    else:
        file_window = getattr(decoded, "window", None) if steps.intensity == "auto" else None
        if file_window is not None and len(file_window) == 2 and float(file_window[1]) > 0:
            x = window(x, float(file_window[0]), float(file_window[1]))
        elif getattr(decoded, "value_range", None) is not None and getattr(decoded, "bit_depth", None) == 8:
            if steps.modality_steps:
                x = x * np.float32(1 / 255)
                np.clip(x, 0.0, 1.0, out=x)
            else:
                x, exact8 = np.rint(np.clip(x, 0.0, 255.0)).astype(np.uint8), True
        else:
            x = _minmax(x)

    # 2. modality steps, at a working resolution (the bounding box of the field of view is found at full size)
    if steps.modality_steps:
        if steps.fov_crop:
            x = _fov_box(x)
        x = _shrink(x, max(2 * int(size), 512))
        if steps.fov_crop:
            x = _square(x, "pad")
        if steps.color_constancy:
            x = _shades_of_grey(x)
        if steps.clahe:
            x = _clahe(x, steps.clahe_clip, per_channel=bool(steps.windows))

    # 3. geometry, 4. channels and uint8
    want = channels or x.shape[2]
    x = _square(x, steps.resize)
    if want == 1 and x.shape[2] == 3:
        x = _luma(x)
    x = _resize(x, int(size))
    if not exact8:
        x = np.rint(np.clip(x, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    if want == 3 and x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return np.ascontiguousarray(x)


# --- helpers ------------------------------------------------------------------------------------


def _window_text(steps: Steps) -> str:
    return ", ".join(f"{n}: centre {c:g}, width {w:g} HU" for n, (c, w) in zip(steps.window_names, steps.windows))


def _pixels(decoded: Any, where: str) -> np.ndarray:
    x = np.asarray(getattr(decoded, "pixels", None), dtype=np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise DataError(f"{where}: decoded pixels must be (H, W, 1) or (H, W, 3); got shape {x.shape}.")
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise DataError(f"{where}: image is {x.shape[0]}x{x.shape[1]} pixels; too small to classify.")
    return replace_non_finite(x, where)


def replace_non_finite(x: np.ndarray, where: str, unit: str = "pixel") -> np.ndarray:
    """NaN and infinite values (the background of some NIfTI files) as the darkest / brightest finite value; a
    :class:`DataError` naming ``where`` when no value is finite."""
    finite = np.isfinite(x)
    if finite.all():
        return x
    if not finite.any():
        raise DataError(f"{where}: every {unit} is NaN or infinite; the file holds no image.")
    lo, hi = float(x[finite].min()), float(x[finite].max())
    return np.nan_to_num(x, nan=lo, posinf=hi, neginf=lo)


def _sample(x: np.ndarray) -> np.ndarray:
    """A strided sample of at most ~``_MAX_STAT_PIXELS`` pixels, for statistics on large images."""
    step = int(np.ceil(np.sqrt(x.shape[0] * x.shape[1] / _MAX_STAT_PIXELS)))
    return x[::step, ::step] if step > 1 else x


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(_sample(x), _PERCENTILES)
    if not hi > lo:  # (almost) constant: fall back to the true range, and zeros when there is none
        lo, hi = float(x.min()), float(x.max())
        if not hi > lo:
            return np.zeros_like(x)
    out = (x - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def _zscore_foreground(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        return np.zeros_like(x)
    fg = x > threshold_otsu(_sample(x))
    if not fg.any():
        fg = x > lo
    values = x[fg]
    mean, std = float(values.mean()), float(values.std())
    z = (x - np.float32(mean)) / np.float32(std if std > 0 else 1.0)
    out = np.clip((z + 3.0) / 6.0, 0.0, 1.0, out=z)
    out[~fg] = 0.0
    return out


def _fov_box(x: np.ndarray) -> np.ndarray:
    """The bounding box of the field of view (a view; padded to a square by the caller)."""
    mask = x[..., 0] > FOV_THRESHOLD  # red in RGB, the only channel in grey
    rows = np.flatnonzero(mask.mean(axis=1) > 0.01)
    cols = np.flatnonzero(mask.mean(axis=0) > 0.01)
    if rows.size == 0 or cols.size == 0:
        logger.debug("fov_crop: no field of view brighter than %s; image kept whole", FOV_THRESHOLD)
        return x
    return x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _shades_of_grey(x: np.ndarray, p: int = 6) -> np.ndarray:
    # A few lines of numpy; scikit-image and OpenCV have no shades-of-grey colour constancy.
    if x.shape[2] != 3:
        return x
    norms = np.mean(np.power(_sample(x), p, dtype=np.float64), axis=(0, 1)) ** (1.0 / p)
    if not (norms > 0).all():
        return x
    gain = np.linalg.norm(norms) / (np.sqrt(3.0) * norms)  # scale each channel to the grey of the same norm
    return np.clip(x * gain.astype(np.float32), 0.0, 1.0)


def _clahe(x: np.ndarray, clip: float, per_channel: bool) -> np.ndarray:
    def equalize(channel: np.ndarray) -> np.ndarray:
        if not channel.max() > channel.min():  # scikit-image would turn a constant image white
            return channel
        return equalize_adapthist(channel, clip_limit=clip).astype(np.float32)

    if x.shape[2] == 1 or per_channel:
        return np.stack([equalize(x[..., c]) for c in range(x.shape[2])], axis=2)
    value = x.max(axis=2)  # HSV value
    new = equalize(value)
    gain = np.divide(new, value, out=np.zeros_like(value), where=value > 0)
    return np.clip(x * gain[..., None], 0.0, 1.0)


def _to_pil(channel: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(channel))  # uint8 -> mode L, float32 -> mode F


def _resize_hw(x: np.ndarray, hw: tuple[int, int], reducing_gap: float | None = None) -> np.ndarray:
    """Resize every channel to ``(height, width)`` with Pillow bicubic (uint8 stays uint8)."""
    if x.shape[:2] == hw:
        return x
    if x.dtype == np.uint8 and x.shape[2] == 3:
        return np.asarray(Image.fromarray(x).resize(hw[::-1], Image.Resampling.BICUBIC, reducing_gap=reducing_gap))
    return np.stack([np.asarray(_to_pil(x[..., c]).resize(hw[::-1], Image.Resampling.BICUBIC,
                                                           reducing_gap=reducing_gap))
                     for c in range(x.shape[2])], axis=2)


def _shrink(x: np.ndarray, side: int) -> np.ndarray:
    """Shrink (never enlarge) so the shorter side is at most ``side``, keeping the aspect."""
    h, w = x.shape[:2]
    if min(h, w) <= side:
        return x
    scale = side / min(h, w)
    # reducing_gap: a box pre-reduction by an integer factor, then bicubic; Pillow documents the result as
    # indistinguishable from plain resampling at 3.0, and it saves a third of the time on large photographs
    hw = (max(1, round(h * scale)), max(1, round(w * scale)))
    return np.clip(_resize_hw(x, hw, reducing_gap=3.0), 0.0, 1.0)


def _square(x: np.ndarray, mode: str) -> np.ndarray:
    h, w = x.shape[:2]
    if h == w or mode == "stretch":
        return x
    s = min(h, w) if mode == "crop" else max(h, w)
    top, left = abs(h - s) // 2, abs(w - s) // 2
    if mode == "crop":
        return x[top:top + s, left:left + s]
    out = np.zeros((s, s, x.shape[2]), dtype=x.dtype)
    out[top:top + h, left:left + w] = x
    return out


def _luma(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:  # Pillow's L conversion, bit for bit what conform() does
        return np.asarray(Image.fromarray(x).convert("L"))[..., None]
    return (x @ _LUMA)[..., None]


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    return _resize_hw(x, (size, size))

"""Decode-time preprocessing of volumes: a float ``(D, H, W)`` volume becomes uint8 ``(D, H, W, C)`` at the
training size, the 3D counterpart of :func:`medclass.transforms.preprocess.preprocess`.

The intensity step has the 2D presets' semantics, resolved by the same
:func:`~medclass.transforms.preprocess.resolve_steps` from the same :class:`~medclass.config.PreprocessConfig`:
a CT window (``ct-lung`` ... from ``CT_WINDOW_SETTINGS``; ``ct-multi`` stacks lung, mediastinum and bone as
3 channels; a named window needs Hounsfield units), the foreground z-score (``mri``: Otsu foreground, z in
[-3, 3] to [0, 1], background 0), the file's own window, or min-max (8-bit volumes divided by 255, others
stretched from their 0.5th to 99.5th percentile). Statistics (percentiles, Otsu) are measured on the whole
volume before resampling, on a strided sample of at most about a million voxels. The linear maps are MONAI's
``ScaleIntensityRange`` (with ``clip=True``), identical to :func:`~medclass.transforms.preprocess.window`.
The 2D photograph steps (field-of-view crop, colour constancy, CLAHE) are refused for volumes.

Geometry works in millimetres when the spacing is known (``facts["spacing"]``; an unknown axis counts as
1 mm), so a CT of 0.7 x 0.7 x 2.5 mm voxels is not squashed:

- ``spacing`` given: the volume is resampled to that spacing (the physical extent ``shape x spacing`` is kept;
  the exact output spacing is ``extent / round(extent / spacing)``), then centre-cropped or padded to ``size``,
  a field of view of ``size x spacing`` mm (nnU-Net's approach). ``size=None`` keeps the resampled shape.
- ``spacing`` unset: ``resize`` as in 2D, but in physical space: ``crop`` scales the volume so that its
  shortest physical side fills the output, then crops the centre; ``pad`` fits the longest side and pads;
  ``stretch`` resizes each axis to the output, whatever the aspect.

Resampling is MONAI's ``Resize`` (trilinear, after a Gaussian anti-aliasing of sigma = (factor - 1) / 2
voxels on the axes that shrink) to the computed shape, then ``ResizeWithPadOrCrop``; padding is black (0 after
the intensity step), as in 2D. ``Resize`` maps the volume's box onto the output box, so the content stays
centred; MONAI's ``Spacing`` keeps the first voxel's centre fixed instead, which shifts the content by half the
change of spacing. Intensities are mapped after resampling (one channel resampled, not three stacked windows), with the
parameters measured before it, so a window's clipping applies to interpolated Hounsfield units.

A volume whose resampled grid would exceed ``max_voxels`` (default 512³, about 0.5 GB as float32) is refused
before any work, with the coarsest isotropic spacing that fits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.transforms import Resize, ResizeWithPadOrCrop, ScaleIntensityRange
from scipy.ndimage import gaussian_filter
from skimage.filters import threshold_otsu

from ..config import PreprocessConfig
from ..errors import ConfigError, DataError
from .preprocess import Steps, _window_text, replace_non_finite, resolve_steps

__all__ = ["DEFAULT_MAX_VOXELS", "VolumeGeometry", "plan_geometry", "preprocess_volume", "resample_volume"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_VOXELS = 512 ** 3
_PERCENTILES = (0.5, 99.5)  # as the 2D min-max
_MAX_STAT_VOXELS = 1 << 20


@dataclass(frozen=True)
class VolumeGeometry:
    """What :func:`preprocess_volume` does to a volume's grid, decided before any work.

    Attributes:
        resampled_shape: the grid after resampling (before crop or pad).
        output_shape: the final ``(D, H, W)``.
        output_spacing: mm per output voxel along D, H, W.
    """

    resampled_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    output_spacing: tuple[float, float, float]


def _triple(value, name: str, where: str, kind=float) -> tuple:
    values = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else (value,) * 3
    if len(values) != 3:
        raise ConfigError(f"{where}: {name} must be one number or three (D, H, W). Got {value!r}.")
    try:
        out = tuple(kind(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} must be one number or three (D, H, W). Got {value!r}.") from None
    if not all(v > 0 for v in out):
        raise ConfigError(f"{where}: {name} must be positive. Got {value!r}.")
    return out


def plan_geometry(shape: Sequence[int], spacing: Sequence[float | None] | None, size: int | Sequence[int] | None,
                  *, target_spacing: float | Sequence[float] | None = None, resize: str = "crop",
                  max_voxels: int = DEFAULT_MAX_VOXELS, where: str = "volume") -> VolumeGeometry:
    """The resampled and final grids of a volume of ``shape`` voxels of ``spacing`` mm (module docstring).

    Raises:
        ConfigError: invalid sizes, spacings or ``resize``.
        DataError: the resampled or final grid exceeds ``max_voxels``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise DataError(f"{where}: a volume must be (D, H, W) with every side >= 1; got shape {shape}.")
    sp = tuple(float(s) if s else 1.0 for s in (spacing or (None,) * 3))
    extent = np.array(shape) * np.array(sp)
    if resize not in ("crop", "pad", "stretch"):
        raise ConfigError(f"{where}: resize must be crop, pad or stretch. Got {resize!r}.")
    out = _triple(size, "size", where, int) if size is not None else None
    if target_spacing is not None:
        t = np.array(_triple(target_spacing, "target spacing", where))
        resampled = tuple(int(v) for v in np.maximum(np.rint(extent / t), 1))
        out_spacing = tuple(float(v) for v in extent / np.array(resampled))
    else:
        if out is None:
            raise ConfigError(f"{where}: give an output size, a target spacing, or both.")
        if resize == "stretch":
            resampled = out
        else:
            scale = (min if resize == "crop" else max)(extent / np.array(out))  # mm per output voxel
            resampled = tuple(int(v) for v in np.maximum(np.rint(extent / scale), 1))
        out_spacing = tuple(float(v) for v in extent / np.array(resampled))
    final = out if out is not None else resampled
    for what, grid in (("resampled", resampled), ("output", final)):
        n = math.prod(grid)
        if n > max_voxels:
            coarsest = float(np.cbrt(np.prod(extent) / max_voxels))
            raise DataError(f"{where}: {shape[0]}x{shape[1]}x{shape[2]} voxels of {_mm(sp)} would become "
                            f"{grid[0]}x{grid[1]}x{grid[2]} {what} voxels ({n / 1e6:.0f}M), more than the budget of "
                            f"{max_voxels / 1e6:.0f}M. Choose a coarser target spacing (at least {coarsest:.2f} mm "
                            f"isotropic fits) or a smaller size, or leave the spacing unset to resize the volume to "
                            f"the size.")
    return VolumeGeometry(resampled, final, out_spacing)


def _mm(sp) -> str:
    return "x".join(f"{s:g}" for s in sp) + " mm"


def resample_volume(x: np.ndarray | torch.Tensor, shape: Sequence[int], mode: str = "trilinear") -> torch.Tensor:
    """``x`` ``(C, D, H, W)`` (or ``(D, H, W)``) resized to ``shape``: the volume's box onto the output box.

    Axes that shrink by a factor f are first smoothed with a Gaussian of sigma (f - 1) / 2 voxels (the rule of
    MONAI's and scikit-image's ``anti_aliasing``), by :func:`scipy.ndimage.gaussian_filter`, which is about five
    times faster on a CPU than MONAI's separable convolution; then MONAI's ``Resize`` interpolates. Returns a
    float32 tensor.
    """

    t = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x, dtype=torch.float32)
    squeeze = t.ndim == 3
    t = t[None] if squeeze else t
    shape = tuple(int(s) for s in shape)
    if tuple(t.shape[1:]) != shape:
        sigma = [max((i / o - 1.0) / 2.0, 0.0) for i, o in zip(t.shape[1:], shape, strict=True)]
        if mode != "nearest" and max(sigma) > 0:
            a = t.numpy()
            t = torch.from_numpy(np.stack([gaussian_filter(c, sigma, mode="nearest") for c in a]))
        t = Resize(shape, mode=mode, anti_aliasing=False)(t)
        t = t.as_tensor() if hasattr(t, "as_tensor") else t
    return t[0] if squeeze else t


def preprocess_volume(volume: np.ndarray, facts: Mapping | None = None, cfg: PreprocessConfig | None = None,
                      size: int | Sequence[int] | None = 28, *, spacing: float | Sequence[float] | None = None,
                      channels: int | None = None, max_voxels: int = DEFAULT_MAX_VOXELS,
                      where: str = "volume") -> np.ndarray:
    """A volume as uint8 ``(D, H, W, C)``, following the steps in the module docstring.

    Args:
        volume: float ``(D, H, W)`` in the file's units (Hounsfield units for CT), e.g. from
            :func:`medclass.data.series.read_any_volume`.
        facts: what the reader says about it: ``spacing`` (mm along D, H, W), ``hounsfield``, ``modality``,
            ``window``, ``source``; None: nothing known (voxels of 1 mm, not HU).
        cfg: the preprocessing settings (``data.preprocess``); None: the defaults (preset none).
        size: output side in voxels (one number for a cube, or three); None keeps the resampled grid (only with
            ``spacing``).
        spacing: target voxel spacing in mm (one number or three); None fits the volume to ``size``.
        channels: 1 or 3; None keeps the natural count (3 for stacked windows, else 1).
        max_voxels: the largest grid allowed after resampling.
        where: the file named in error messages.

    Raises:
        DataError: a CT window on a volume that is not in Hounsfield units, unusable voxels, a grid over budget.
        ConfigError: contradictory settings, or a 2D-only step (CLAHE, field-of-view crop, colour constancy).

    Example:
        >>> vol, facts = read_any_volume("ct/series_003")  # doctest: +SKIP
        >>> x = preprocess_volume(vol, facts, PreprocessConfig(preset="ct-multi"), 64, spacing=None)  # doctest: +SKIP
        >>> x.shape, x.dtype  # doctest: +SKIP
        ((64, 64, 64, 3), dtype('uint8'))
    """
    facts = dict(facts or {})
    cfg = cfg or PreprocessConfig()
    steps = resolve_steps(cfg)
    if steps.modality_steps:
        names = [n for on, n in ((steps.fov_crop, "fov_crop"), (steps.color_constancy, "color_constancy"),
                                 (steps.clahe, "clahe")) if on]
        raise ConfigError(f"{where}: data.preprocess {', '.join(names)} (from {cfg.preset!r} or set directly) "
                          f"{'is a 2D step' if len(names) == 1 else 'are 2D steps'} for photographs and radiographs; "
                          f"volumes take a window, z-score or min-max. Use preset none, mri or a ct-* preset.")
    if channels not in (None, 1, 3):
        raise ConfigError(f"{where}: channels must be 1, 3 or None (natural). Got {channels!r}.")
    if len(steps.windows) > 1 and channels == 1:
        raise ConfigError(f"{where}: {steps.origin} stacks {len(steps.windows)} windows as channels, but 1 channel "
                          f"was requested. Use a single window, or 3 channels (data.channels=3).")
    x = _voxels(volume, where)
    geometry = plan_geometry(x.shape, facts.get("spacing"), size, target_spacing=spacing, resize=steps.resize,
                             max_voxels=max_voxels, where=where)
    maps, pad_value = _intensity_maps(x, volume, facts, steps, where)

    t = resample_volume(x, geometry.resampled_shape)
    if geometry.output_shape != geometry.resampled_shape:

        t = ResizeWithPadOrCrop(geometry.output_shape, mode="constant", value=pad_value)(t[None])
        t = (t.as_tensor() if hasattr(t, "as_tensor") else t)[0]
    out = torch.stack([m(t) for m in maps]).clamp_(0.0, 1.0)  # (C, D, H, W) in [0, 1]
    want = channels or out.shape[0]
    if want == 3 and out.shape[0] == 1:
        out = out.expand(3, *out.shape[1:])
    u8 = torch.round(out * 255.0).to(torch.uint8).permute(1, 2, 3, 0)
    return np.ascontiguousarray(u8.numpy())


# --- intensity -----------------------------------------------------------------------------------------------


def _voxels(volume: np.ndarray, where: str) -> np.ndarray:
    x = np.asarray(volume, dtype=np.float32)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise DataError(f"{where}: a volume must be (D, H, W) (or (D, H, W, 1)); got shape {tuple(x.shape)}. For "
                        f"a 4D series choose one volume first (read_nifti_volume(..., volume=K)).")
    return replace_non_finite(x, where, "voxel")


def _sample(x: np.ndarray) -> np.ndarray:
    """A strided sample of at most about ``_MAX_STAT_VOXELS`` voxels, for statistics on large volumes."""
    step = int(np.ceil(np.cbrt(x.size / _MAX_STAT_VOXELS)))
    return x[::step, ::step, ::step] if step > 1 else x


def _scale(lo: float, hi: float):
    """``lo -> 0, hi -> 1``, clipped: MONAI's ScaleIntensityRange."""

    f = ScaleIntensityRange(a_min=float(lo), a_max=float(hi), b_min=0.0, b_max=1.0, clip=True)

    def apply(t: torch.Tensor) -> torch.Tensor:
        out = f(t)
        return out.as_tensor() if hasattr(out, "as_tensor") else out

    return apply


def _intensity_maps(x: np.ndarray, original, facts: dict, steps: Steps, where: str):
    """One function per output channel (native units -> [0, 1]) and a native value every channel maps to 0."""
    vmin = float(x.min())
    if steps.intensity == "window":
        if steps.needs_hu and not bool(facts.get("hounsfield", False)):
            raise DataError(
                f"{where}: {steps.origin} applies CT windows ({_window_text(steps)}) that need CT voxels in "
                f"Hounsfield units, but this volume is not (source {facts.get('source', '?')}, modality "
                f"{facts.get('modality') or 'unknown'}). Use data.preprocess.preset=none, or a custom "
                f"window_center/window_width in the volume's own units (NIfTI files do not say they hold HU).")
        lows = [c - w / 2.0 for c, w in steps.windows]
        return [_scale(c - w / 2.0, c + w / 2.0) for c, w in steps.windows], min([vmin, *lows])
    if steps.intensity == "zscore":
        return [_zscore_map(x)], vmin
    file_window = facts.get("window") if steps.intensity == "auto" else None
    if file_window is not None and len(file_window) == 2 and float(file_window[1]) > 0:
        c, w = float(file_window[0]), float(file_window[1])
        return [_scale(c - w / 2.0, c + w / 2.0)], min(vmin, c - w / 2.0)
    eight_bit = np.asarray(original).dtype == np.uint8 or tuple(facts.get("value_range") or ()) == (0.0, 255.0)
    if eight_bit:
        return [_scale(0.0, 255.0)], min(vmin, 0.0)
    lo, hi = (float(v) for v in np.percentile(_sample(x), _PERCENTILES))
    if not hi > lo:  # (almost) constant: the true range, and zeros when there is none
        lo, hi = vmin, float(x.max())
        if not hi > lo:
            return [lambda t: torch.zeros_like(t)], vmin
    return [_scale(lo, hi)], min(vmin, lo)


def _zscore_map(x: np.ndarray):
    """The 2D ``zscore_foreground`` in 3D: Otsu foreground, z in [-3, 3] to [0, 1], background 0."""

    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        return lambda t: torch.zeros_like(t)
    sample = _sample(x)
    threshold = float(threshold_otsu(sample))
    fg = x > threshold
    if not fg.any():
        threshold = lo
        fg = x > lo
    values = x[fg]
    mean, std = float(values.mean()), float(values.std())
    std = std if std > 0 else 1.0
    scale = _scale(mean - 3.0 * std, mean + 3.0 * std)

    def apply(t: torch.Tensor) -> torch.Tensor:
        return torch.where(t > threshold, scale(t), torch.zeros_like(t))

    return apply

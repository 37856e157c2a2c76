"""Figures for volumes, drawn with matplotlib and returned as PNG bytes: montages through the hottest point of a
heatmap in the three planes, and per-slice weights.

Volumes are in the canonical layout of :mod:`medclass.data.series` (D to superior, H to posterior, W to the
patient's left) and are shown as a radiologist views them: axial slices with anterior at the top and the
patient's right on the left, coronal and sagittal slices with superior at the top. With ``spacing`` the
pixels get their physical aspect, so a CT of 2.5 mm slices is not squashed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from .figures import _png

__all__ = ["orthogonal_montage", "slice_weights_figure"]

PLANES = ("axial", "coronal", "sagittal")


def _plane(volume: np.ndarray, plane: str, k: int) -> np.ndarray:
    """Slice ``k`` of ``plane`` as displayed (see the module docstring)."""
    if plane == "axial":
        return volume[k]
    if plane == "coronal":
        return volume[::-1, k, :]
    return volume[::-1, :, k]


def _aspect(spacing: Sequence[float] | None, plane: str) -> float:
    """Height / width of one displayed pixel."""
    if not spacing:
        return 1.0
    d, h, w = (float(s) if s else 1.0 for s in spacing)
    return {"axial": h / w, "coronal": d / w, "sagittal": d / h}[plane]


def orthogonal_montage(volume: np.ndarray, heatmap: np.ndarray | None, title: str,
                       point: Sequence[int] | None = None, n: int = 5, step: int | None = None,
                       spacing: Sequence[float] | None = None, alpha: float = 0.45) -> bytes:
    """Axial, coronal and sagittal slices through the hottest point of ``heatmap``, heatmap overlaid.

    One row per plane; the middle column is the slice through ``point`` (default: the heatmap's maximum, or
    the volume's centre without a heatmap), marked by a crosshair, flanked by ``n // 2`` slices on each side,
    ``step`` slices apart (default: spread over about a quarter of the volume).

    Args:
        volume: ``(D, H, W)`` (or ``(D, H, W, C)``: the first channel is shown).
        heatmap: ``(D, H, W)`` in [0, 1], or None for the volume alone.
        title: the figure's title.
        spacing: mm along D, H, W, for the pixels' aspect.
    """
    vol = np.asarray(volume, dtype=np.float32)
    vol = vol[..., 0] if vol.ndim == 4 else vol
    if vol.ndim != 3:
        raise ValueError(f"orthogonal_montage needs a volume (D, H, W); got shape {np.shape(volume)}.")
    heat = None if heatmap is None else np.asarray(heatmap, dtype=np.float32)
    if heat is not None and heat.shape != vol.shape:
        raise ValueError(f"heatmap shape {heat.shape} differs from the volume's {vol.shape}.")
    if point is None:
        point = (np.unravel_index(int(np.nanargmax(heat)), heat.shape) if heat is not None
                 else tuple(s // 2 for s in vol.shape))
    point = tuple(int(p) for p in point)
    n = max(1, int(n))
    vmin, vmax = float(np.min(vol)), float(np.max(vol))
    fig = Figure(figsize=(1.9 * n + 0.9, 6.2))
    axes = fig.subplots(3, n, squeeze=False)
    im = None
    for row, plane in enumerate(PLANES):
        axis = PLANES.index(plane)
        size = vol.shape[axis]
        s = step or max(1, size // (4 * max(1, n // 2)))  # n // 2 neighbours each side span about size / 4
        centre = point[axis]
        for col in range(n):
            ax = axes[row, col]
            ax.axis("off")
            k = centre + (col - n // 2) * s
            if not 0 <= k < size:
                continue
            aspect = _aspect(spacing, plane)
            ax.imshow(_plane(vol, plane, k), cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect,
                      interpolation="nearest")
            if heat is not None:
                im = ax.imshow(_plane(heat, plane, k), cmap="jet", alpha=alpha, vmin=0, vmax=1, aspect=aspect,
                               interpolation="bilinear")
            if k == centre:  # crosshair at the point, in display coordinates
                d, h, w = point
                y, x = {"axial": (h, w), "coronal": (vol.shape[0] - 1 - d, w),
                        "sagittal": (vol.shape[0] - 1 - d, h)}[plane]
                ax.axhline(y, color="w", lw=0.6, alpha=0.8)
                ax.axvline(x, color="w", lw=0.6, alpha=0.8)
            ax.set_title(f"{plane} {k}" + (" (peak)" if k == centre else ""), fontsize=8)
    fig.suptitle(f"{title}\npeak at (d, h, w) = {point}", fontsize=10)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.02, pad=0.02, label="importance")
    return _png(fig)


def slice_weights_figure(volume: np.ndarray, weights: np.ndarray, title: str, top: int = 4,
                         spacing: Sequence[float] | None = None) -> bytes:
    """A bar chart of the slices' weights ``(D,)`` (e.g. MIL attention) and the ``top`` heaviest axial slices."""
    vol = np.asarray(volume, dtype=np.float32)
    vol = vol[..., 0] if vol.ndim == 4 else vol
    w = np.asarray(weights, dtype=np.float64).ravel()
    if vol.ndim != 3 or len(w) != vol.shape[0]:
        raise ValueError(f"slice_weights_figure needs a volume (D, H, W) and D weights; got {vol.shape} and "
                         f"{len(w)} weights.")
    top = max(1, min(int(top), len(w)))
    order = np.argsort(-w)[:top]
    fig = Figure(figsize=(2.0 * top + 0.5, 4.6))
    grid = fig.add_gridspec(2, top, height_ratios=(1, 1.3))
    bar = fig.add_subplot(grid[0, :])
    bar.bar(np.arange(len(w)), w, color="tab:blue")
    bar.axhline(1 / len(w), color="k", ls=":", lw=1, label="uniform (1/D)")
    bar.bar(order, w[order], color="tab:red", label=f"top {top}")
    bar.set_xlabel("slice (inferior to superior)")
    bar.set_ylabel("weight")
    bar.legend(fontsize=8)
    vmin, vmax = float(vol.min()), float(vol.max())
    for i, k in enumerate(sorted(order)):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(vol[k], cmap="gray", vmin=vmin, vmax=vmax, aspect=_aspect(spacing, "axial"))
        ax.set_title(f"slice {k}: {w[k]:.2f}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return _png(fig)

"""Descriptions of a set of images that travel with a trained model: intensity statistics and source sizes.

Recorded for the training split when a run is trained (in its input pipeline's ``expected`` facts) and measured
again on any new set (external validation), so what changed between the two can be stated
(:mod:`medclass.evaluation.shift`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["intensity_statistics", "size_summary"]

_CHUNK = 4096


def intensity_statistics(images: np.ndarray) -> dict[str, list[float]]:
    """Per channel: mean, sd, 5th and 95th percentile of uint8 ``(N, H, W, C)`` images scaled to [0, 1].

    Percentiles come from a histogram of the 256 uint8 levels, so any number of images costs one pass.
    """
    images = np.asarray(images)
    c = images.shape[-1]
    hist = np.zeros((c, 256), np.int64)
    for i in range(0, len(images), _CHUNK):
        chunk = np.asarray(images[i:i + _CHUNK]).reshape(-1, c)
        for k in range(c):
            hist[k] += np.bincount(chunk[:, k], minlength=256)
    levels = np.arange(256) / 255.0
    out: dict[str, list[float]] = {"mean": [], "sd": [], "p05": [], "p95": []}
    for k in range(c):
        n = hist[k].sum()
        if n == 0:
            for key in out:
                out[key].append(float("nan"))
            continue
        mean = float((hist[k] * levels).sum() / n)
        out["mean"].append(round(mean, 5))
        out["sd"].append(round(float(np.sqrt((hist[k] * (levels - mean) ** 2).sum() / n)), 5))
        cdf = np.cumsum(hist[k]) / n
        out["p05"].append(round(float(levels[np.searchsorted(cdf, 0.05)]), 5))
        out["p95"].append(round(float(levels[np.searchsorted(cdf, 0.95)]), 5))
    return out


def size_summary(sizes: Sequence[tuple[int, int]], spacings: Sequence[tuple[float, float] | None]) -> dict[str, Any]:
    """Median, smallest and largest source size (rows, columns) and pixel spacing (mm), where known."""
    out: dict[str, Any] = {"n": len(sizes)}
    if len(sizes):
        a = np.asarray(sizes, float)
        out["size"] = {"median": np.median(a, 0).tolist(), "min": a.min(0).astype(int).tolist(),
                       "max": a.max(0).astype(int).tolist()}
    known = [s for s in spacings if s is not None]
    out["spacing_known"] = len(known)
    if known:
        b = np.asarray(known, float)
        out["spacing_mm"] = {"median": np.round(np.median(b, 0), 4).tolist(), "min": np.round(b.min(0), 4).tolist(),
                             "max": np.round(b.max(0), 4).tolist()}
    return out

"""Volume figures (medclass/reports/volume_figures.py) return PNGs and pass through the hottest point."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medclass.reports.volume_figures import orthogonal_montage, slice_weights_figure


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).size


def test_orthogonal_montage_is_a_png_through_the_peak():
    rng = np.random.default_rng(0)
    vol = rng.random((12, 16, 20)).astype(np.float32)
    heat = np.zeros_like(vol)
    heat[3, 10, 15] = 1.0
    png = orthogonal_montage(vol, heat, "toy", spacing=(2.5, 0.7, 0.7))
    w, h = _png_size(png)
    assert w > 300 and h > 300
    assert _png_size(orthogonal_montage(vol, None, "no heatmap", n=1)) is not None  # the volume alone, one column
    assert _png_size(orthogonal_montage(vol[..., None], heat, "channels last", point=(0, 0, 0), n=3))
    with pytest.raises(ValueError, match=r"heatmap shape \(4, 4, 4\) differs from the volume's \(12, 16, 20\)"):
        orthogonal_montage(vol, np.zeros((4, 4, 4)), "bad")


def test_montage_title_names_the_peak(monkeypatch):
    import medclass.reports.volume_figures as vf

    titles = []
    monkeypatch.setattr(vf, "_png", lambda fig: titles.append(fig._suptitle.get_text()) or b"")
    heat = np.zeros((8, 8, 8))
    heat[5, 2, 6] = 1
    orthogonal_montage(np.zeros((8, 8, 8)), heat, "case 7")
    assert titles == ["case 7\npeak at (d, h, w) = (5, 2, 6)"]


def test_slice_weights_figure_is_a_png():
    vol = np.random.default_rng(1).random((10, 8, 8))
    weights = np.full(10, 0.05)
    weights[4] = 0.55
    assert _png_size(slice_weights_figure(vol, weights, "attention", top=3))
    with pytest.raises(ValueError, match="D weights"):
        slice_weights_figure(vol, weights[:5], "bad")

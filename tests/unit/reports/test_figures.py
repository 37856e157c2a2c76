"""Figures: every function draws a PNG without pyplot, so importing them leaves a notebook's backend alone."""

import subprocess
import sys

import numpy as np

from medclass.evaluation.calibration import reliability_bins
from medclass.reports import figures

PNG = b"\x89PNG\r\n\x1a\n"


def _every_figure() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (16, 16), dtype=np.uint8)
    heat = rng.random((16, 16))
    y, p = rng.integers(0, 2, 50), rng.random(50)
    iv = {"estimate": 0.8, "low": 0.7, "high": 0.9}
    curve = {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.8, 1.0], "thresholds": [None, 0.5, 0.0]}
    op = {"name": "youden", "threshold": 0.5, **{k: iv for k in ("sensitivity", "specificity", "ppv")}}
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_auc": 0.5 + e / 10, "val_acc": 0.6}
               for e in (1, 2, 3)]
    return {
        "training_curves": figures.training_curves(history, 2),
        "roc_pr_curves": figures.roc_pr_curves({"roc": curve, "pr": curve, "prevalence": 0.4}, iv, iv, [op]),
        "confusion_matrices": figures.confusion_matrices([[5, 1], [2, 7]], ["benign", "malignant"]),
        "reliability_diagram": figures.reliability_diagram([("model", reliability_bins(y, p))],
                                                           {"edges": np.linspace(0, 1, 11).tolist(),
                                                            "count": [5] * 10}),
        "heatmap_overlay": figures.heatmap_overlay(image, heat, "toward malignant"),
        "heatmap_panels": figures.heatmap_panels(image, [(heat, "toward a", False), (heat * 0, "toward b", True)]),
        "volume_montage": figures.volume_montage(rng.random((6, 16, 16)), rng.random((6, 16, 16)), "volume"),
        "filter_grid": figures.filter_grid(rng.standard_normal((8, 1, 3, 3)), "filters"),
        "activation_grid": figures.activation_grid(rng.random((6, 8, 8)), "activations"),
        "corruption_curves": figures.corruption_curves(
            {"severities": [1, 2], "clean": {"auc": 0.9, "acc": 0.8},
             "corruptions": {"pixelate": {"family": "digital", "auc": [0.85, None], "acc": [0.75, 0.7]},
                             "gaussian_noise": {"family": "noise", "auc": [0.8, 0.6], "acc": [0.7, 0.6]}}}),
    }


def test_every_figure_function_returns_a_png():
    pngs = _every_figure()
    assert set(pngs) == set(figures.__all__)
    for name, png in pngs.items():
        assert png.startswith(PNG) and len(png) > 1000, name


def test_drawing_figures_does_not_touch_pyplot_or_the_backend():
    code = ("import sys, matplotlib\n"
            "matplotlib.use('svg')\n"
            "from tests.unit.reports.test_figures import _every_figure\n"
            "_every_figure()\n"
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["svg", "False"], out.stderr

"""The heatmap gallery: empty Grad-CAM maps are detected, drawn as such and explained."""

import io

import numpy as np
from PIL import Image

from medclass.reports import figures
from medclass.reports._render import render
from medclass.reports.gallery import is_blank


def test_blank_maps_are_the_flat_ones():
    assert is_blank(np.zeros((8, 8)))  # Grad-CAM of a confident negative: ReLU left nothing
    assert is_blank(np.full((8, 8), 0.3))
    ramp = np.linspace(0, 1, 64).reshape(8, 8)
    assert not is_blank(ramp)


def test_heatmap_panels_draw_one_panel_per_map():
    image = (np.arange(28 * 28).reshape(28, 28) % 255).astype(np.uint8)
    two = Image.open(io.BytesIO(figures.heatmap_panels(image, [(np.zeros((28, 28)), "toward a", True)])))
    three = Image.open(io.BytesIO(figures.heatmap_panels(
        image, [(np.zeros((28, 28)), "toward a", True), (np.random.default_rng(0).random((28, 28)), "toward b", False)])))
    assert three.size[0] > 1.3 * two.size[0]


def _gallery(blank: bool, method: str = "gradcam") -> dict:
    png = figures.heatmap_panels(np.zeros((8, 8), np.uint8), [(np.zeros((8, 8)), "t", blank)])
    item = {"index": 3, "png": "gallery/test_3.png", "caption": "#3: p(<i>x</i>) = 0.000", "data": png,
            "maps": [{"toward": "malignant", "blank": blank}, {"toward": "benign or normal", "blank": False}]}
    return {"split": "test", "method": method, "method_name": "Grad-CAM", "layer": "layer3", "size": 28,
            "blank_maps": int(blank), "groups": [{"title": "true negatives", "explained": "malignant",
                                                  "also_predicted": True, "items": [item]},
                                                 {"title": "false positives", "explained": "malignant",
                                                  "also_predicted": False, "items": []}]}


def test_gallery_captions_empty_maps_and_says_why():
    page = render("gallery_page.html", gallery=_gallery(True), split="test", run="r")
    assert "<b>Empty map</b> toward malignant" in page and "Why some maps are empty." in page
    assert "its last step (a ReLU)" in page and "maps toward <i>malignant</i> and toward the predicted class" in page
    assert "#3: p(&lt;i&gt;x&lt;/i&gt;)" in page  # captions are escaped
    assert "<p class=\"muted\">none</p>" in page  # an empty group says so
    quiet = render("gallery_page.html", gallery=_gallery(False), split="test", run="r")
    assert "Empty map" not in quiet and "Why some maps are empty." not in quiet
    other = render("gallery_page.html", gallery=_gallery(True, "occlusion"), split="test", run="r")
    assert "no region changed the score" in other and "ReLU" not in other

"""MedMNIST-C corruptions: shape and dtype kept, the image changed, severity monotone where it must be, seeded
randomness that repeats, greyscale handled as medmnistc does, and cross-checks against the libraries medmnistc calls."""

import itertools
import shutil
import subprocess

import numpy as np
import pytest
import torchvision.transforms.functional as TF
from PIL import Image

from medclass.errors import ConfigError
from medclass.transforms.corruptions import (
    CORRUPTION_SETS,
    SEVERITIES,
    _gamma,
    _gaussian_blur,
    _motion_blur,
    choose_corruption_set,
    corrupt_images,
    get_corruption_set,
    image_rng,
)

# corruptions whose effect must grow with severity (mean absolute difference from the clean image); pixelation
# (integer sizes), motion blur (a random angle per image), bubbles and black corner (medmnistc's own severity 5 is
# milder than 4) need not
MONOTONE = {"gaussian_noise", "speckle_noise", "impulse_noise", "shot_noise", "gaussian_blur", "defocus_blur",
            "zoom_blur", "brightness_up", "brightness_down", "contrast_up", "contrast_down", "gamma_corr_up",
            "gamma_corr_down", "saturate", "jpeg_compression"}
RANDOM = {"gaussian_noise", "speckle_noise", "impulse_noise", "shot_noise", "motion_blur", "bubble"}


def _images(n: int = 12, size: int = 32, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Structured uint8 images: a gradient, a bright disc and a dark bar at random places, mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, channels), np.uint8)
    for i in range(n):
        img = 60 + 80 * xx / size + 20 * yy / size
        cx, cy = rng.integers(8, size - 8, 2)
        img = np.where((xx - cx) ** 2 + (yy - cy) ** 2 < 25, 210, img)
        r = rng.integers(2, size - 6)
        img[r:r + 3, 4:size - 4] = 25
        for c in range(channels):
            out[i, ..., c] = np.clip(img * (1 - 0.15 * c) + rng.normal(0, 4, img.shape), 0, 255)
    return out


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


@pytest.mark.parametrize("set_name", CORRUPTION_SETS)
@pytest.mark.parametrize("shape", ["hw", "hw1", "hw3"])
def test_every_corruption_changes_the_image_and_keeps_shape_and_dtype(set_name, shape):
    img = _images(1, channels=3 if shape == "hw3" else 1)[0]
    img = img[..., 0] if shape == "hw" else img
    for name, c in get_corruption_set(set_name).corruptions.items():
        for s in SEVERITIES:
            out = c(img, s, rng=0)
            assert out.shape == img.shape and out.dtype == np.uint8, (name, s)
            assert not np.array_equal(out, img), (set_name, name, s)


@pytest.mark.parametrize("set_name", CORRUPTION_SETS)
def test_severity_is_monotone_where_it_must_be(set_name):
    cs = get_corruption_set(set_name)
    images = _images(channels=3 if set_name in ("pathmnist", "bloodmnist", "dermamnist", "retinamnist") else 1)
    for name, c in cs.corruptions.items():
        if name not in MONOTONE:
            continue
        mads = [_mad(corrupt_images(images, c, s, seed=1), images) for s in SEVERITIES]
        assert all(b >= a - 1e-9 for a, b in itertools.pairwise(mads)), (set_name, name, np.round(mads, 2))


def test_same_seed_same_images_other_seed_other_images():
    images = _images(4)
    for name, c in get_corruption_set("dermamnist").corruptions.items():
        a = corrupt_images(np.repeat(images, 3, -1), c, 3, seed=7)
        assert np.array_equal(a, corrupt_images(np.repeat(images, 3, -1), c, 3, seed=7)), name
        if name in RANDOM:
            assert not np.array_equal(a, corrupt_images(np.repeat(images, 3, -1), c, 3, seed=8)), name
    breast = get_corruption_set("breastmnist").corruptions["motion_blur"]
    assert not np.array_equal(corrupt_images(images, breast, 3, 0), corrupt_images(images, breast, 3, 1))


def test_each_image_has_its_own_generator():
    images = _images(5)
    c = get_corruption_set("pneumoniamnist").corruptions["gaussian_noise"]
    batch = corrupt_images(images, c, 2, seed=3)
    assert np.array_equal(batch[4], c(images[4], 2, image_rng(3, "gaussian_noise", 2, 4)))
    assert not np.array_equal(batch[0], batch[1])


def test_greyscale_noise_is_drawn_per_rgb_channel_then_converted_to_luminance():
    # medmnistc corrupts Image.convert("RGB") and converts greyscale datasets back with convert("L"): the three
    # channels' independent noise is averaged with the luma weights, shrinking its sd by sqrt(.299²+.587²+.114²)
    flat = np.full((64, 64), 128, np.uint8)
    c = get_corruption_set("chestmnist").corruptions["gaussian_noise"]
    sd = c(flat, 5, rng=0).astype(float).std()
    assert sd == pytest.approx(255 * 0.26 * np.sqrt(0.299 ** 2 + 0.587 ** 2 + 0.114 ** 2), rel=0.1)
    rgb = get_corruption_set("dermamnist").corruptions["gaussian_noise"](np.repeat(flat[..., None], 3, -1), 5, rng=0)
    assert not np.array_equal(rgb[..., 0], rgb[..., 1])  # a colour set keeps its channels apart
    grey3 = c(np.repeat(flat[..., None], 3, -1), 5, rng=0)  # a greyscale set's result is grey in every channel
    assert np.array_equal(grey3[..., 0], grey3[..., 2])


def test_parameters_are_medmnistc_registry_values():
    # spot checks against medmnistc 0.1.0, corruptions/registry.py
    breast = get_corruption_set("breastmnist").corruptions
    assert list(breast) == ["pixelate", "jpeg_compression", "speckle_noise", "motion_blur", "brightness_up",
                            "brightness_down", "contrast_down"]
    assert breast["motion_blur"].params[4] == (17, 12) and breast["brightness_down"].params == (0.55, 0.5, 0.45, 0.4,
                                                                                                0.3)
    pneu = get_corruption_set("pneumoniamnist").corruptions
    assert len(pneu) == 13 and pneu["shot_noise"].params == (300, 200, 150, 100, 80)
    assert pneu["gaussian_blur"].params == (3, 5, 7, 9, 11) and pneu["impulse_noise"].family == "noise"
    assert get_corruption_set("organsmnist").corruptions["gamma_corr_up"].params[-1] == 2.0
    for name in CORRUPTION_SETS:
        assert all(len(c.params) == 5 for c in get_corruption_set(name).corruptions.values())
    assert set(get_corruption_set("pathmnist").skipped) == {"stain_deposit"}
    assert set(get_corruption_set("dermamnist").skipped) == {"characters"}


def test_gaussian_blur_matches_torchvision_and_gamma_is_exact():
    for img in np.repeat(_images(6), 3, -1):
        for k in (3, 5, 7, 9, 11, 13):
            ref = np.asarray(TF.gaussian_blur(Image.fromarray(img), kernel_size=k))
            ours = _gaussian_blur(img, k, None)
            d = np.abs(ref.astype(int) - ours)
            assert d.max() <= 1 and (d > 0).mean() < 0.001, k
        for g in (0.4, 0.9, 1.6, 2.0):
            assert np.array_equal(np.asarray(TF.adjust_gamma(Image.fromarray(img), g, gain=1)), _gamma(img, g, None))


def _imagemagick() -> str | None:
    for exe in ("magick", "convert"):
        path = shutil.which(exe)
        if path:
            out = subprocess.run([path, "-version"], check=False, capture_output=True, text=True).stdout
            if out.startswith("Version: ImageMagick"):
                return path
    return None


class _Angle:
    """A stand-in generator whose uniform() returns a fixed angle."""

    def __init__(self, angle: float):
        self.angle = angle

    def uniform(self, low: float, high: float) -> float:
        return self.angle


@pytest.mark.skipif(_imagemagick() is None, reason="Requires: ImageMagick (magick or convert) on PATH")
def test_motion_blur_matches_imagemagick(tmp_path):
    exe = _imagemagick()
    img = np.repeat(_images(1)[0], 3, -1)
    Image.fromarray(img).save(tmp_path / "in.ppm")
    for radius, sigma, angle in ((5, 5, 0.0), (9, 7, 23.5), (17, 12, -40.0)):
        subprocess.run([exe, str(tmp_path / "in.ppm"), "-motion-blur", f"{radius}x{sigma}+{angle}", "-depth", "8",
                        f"ppm:{tmp_path / 'out.ppm'}"], check=True)
        ref = np.asarray(Image.open(tmp_path / "out.ppm").convert("RGB")).astype(int)
        d = np.abs(ref - _motion_blur(img, (radius, sigma), _Angle(angle)))
        assert d.max() <= 1 and (d > 0).mean() < 0.01


def test_bad_input_is_refused_with_the_reason():
    c = get_corruption_set("breastmnist").corruptions["speckle_noise"]
    with pytest.raises(ConfigError, match="Severity must be one of 1, 2, 3, 4, 5"):
        c(np.zeros((8, 8), np.uint8), 6)
    with pytest.raises(ValueError, match="expected a uint8 image"):
        c(np.zeros((8, 8), np.float32), 1)
    with pytest.raises(ConfigError, match="Did you mean 'breastmnist'"):
        get_corruption_set("breastmnsit")


def test_the_set_follows_the_data():
    assert choose_corruption_set("pneumoniamnist")[0] == "pneumoniamnist"
    assert choose_corruption_set("BreastMNIST")[0] == "breastmnist"
    name, why = choose_corruption_set("my_site", preset="xray")
    assert name == "chestmnist" and "preset 'xray'" in why
    assert choose_corruption_set("my_site", modalities=["US", "US"])[0] == "breastmnist"
    assert choose_corruption_set("my_site", modalities=["US", "CT"])[0] == "generic"  # mixed: no one modality
    name, why = choose_corruption_set("toy")
    assert name == "generic" and "no MedMNIST modality" in why
    assert "gamma_corr_up" not in get_corruption_set("generic").corruptions

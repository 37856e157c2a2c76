from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from medclass.config import CT_WINDOWS, PRESETS, PreprocessConfig
from medclass.data.images import conform
from medclass.errors import ConfigError, DataError
from medclass.transforms.preprocess import CT_WINDOW_SETTINGS, output_channels, preprocess, resolve_steps, window


@dataclass(frozen=True)
class Decoded:
    """Stand-in for medclass.data.readers.Decoded (same fields)."""

    pixels: np.ndarray
    source: str = "image"
    modality: str | None = None
    hounsfield: bool = False
    window: tuple[float, float] | None = None
    bit_depth: int = 8
    value_range: tuple[float, float] | None = (0, 255)
    n_frames: int = 1


def png8(a: np.ndarray) -> Decoded:
    a = a[..., None] if a.ndim == 2 else a
    return Decoded(a.astype(np.float32))


def png16(a: np.ndarray) -> Decoded:
    a = a[..., None] if a.ndim == 2 else a
    return Decoded(a.astype(np.float32), bit_depth=16, value_range=(0, 65535))


def ct(hu: np.ndarray) -> Decoded:
    return Decoded(hu[..., None].astype(np.float32), source="dicom", modality="CT", hounsfield=True,
                   window=(40.0, 400.0), bit_depth=16, value_range=None)


P = PreprocessConfig


# --- windows ----------------------------------------------------------------------------------------


def test_window_table_matches_config_choices():
    assert tuple(CT_WINDOW_SETTINGS) == CT_WINDOWS
    assert CT_WINDOW_SETTINGS["lung"] == (-600, 1500) and CT_WINDOW_SETTINGS["bone"] == (400, 1800)


def test_window_maps_hu_linearly_and_clips():
    # lung window: centre -600, width 1500 -> -1350..150 HU; air (-1000 HU) sits at 350/1500, not at 0
    x = window(np.array([-3000, -1350, -1000, 40, 150, 3000]), *CT_WINDOW_SETTINGS["lung"])
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [0, 0, 350 / 1500, (40 + 1350) / 1500, 1, 1], atol=1e-6)
    with pytest.raises(ConfigError, match="width > 0"):
        window(np.zeros(3), 0, 0)


def test_ct_lung_preset_on_hu_image():
    hu = np.full((16, 16), -2000.0)  # outside the field of view
    hu[:, 6:11], hu[:, 11:] = -1000, 40  # air, soft tissue
    out = preprocess(ct(hu), P(preset="ct-lung"), size=16)
    assert out.shape == (16, 16, 1) and out.dtype == np.uint8
    assert (out[:, :6] == 0).all()
    assert (out[:, 6:11] == round(350 / 1500 * 255)).all()
    assert (out[:, 11:] == round(1390 / 1500 * 255)).all()


def test_ct_multi_stacks_three_distinct_windows():
    hu = np.tile(np.linspace(-1000, 1500, 64), (64, 1))
    cfg = P(preset="ct-multi")
    out = preprocess(ct(hu), cfg, size=32)
    assert out.shape == (32, 32, 3) and output_channels(cfg, 1) == 3
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert np.abs(out[..., a].astype(int) - out[..., b]).mean() > 20
    # the same as windowing each channel on its own
    for c, name in enumerate(("lung", "mediastinum", "bone")):
        np.testing.assert_array_equal(out[..., c], preprocess(ct(hu), P(windows=(name,)), size=32)[..., 0])
    with pytest.raises(ConfigError, match="1 channel"):
        preprocess(ct(hu), cfg, size=32, channels=1)


def test_ct_window_on_non_hu_image_is_refused_with_advice():
    mr = Decoded(np.ones((8, 8, 1), np.float32), source="dicom", modality="MR", bit_depth=16, value_range=None)
    with pytest.raises(DataError, match=r"scan\.dcm: preset ct-lung .*Hounsfield.*modality MR.*preset=none"):
        preprocess(mr, P(preset="ct-lung"), size=8, where="scan.dcm")
    with pytest.raises(DataError, match="windows bone"):
        preprocess(png8(np.zeros((8, 8))), P(windows=("bone",)), size=8)
    # a custom window is in the file's own units, so it needs no HU
    out = preprocess(png16(np.full((8, 8), 1000)), P(window_center=1000, window_width=100), size=8)
    assert (out == 128).all()


def test_file_window_is_used_unless_xray():
    hu = np.tile(np.linspace(-400, 400, 32), (32, 1))
    auto = preprocess(ct(hu), P(), size=32)[..., 0]
    np.testing.assert_array_equal(auto, np.rint(window(hu, 40, 400) * 255).astype(np.uint8))
    xray = preprocess(ct(hu), P(preset="xray", clahe=False), size=32)
    assert not np.array_equal(xray[..., 0], auto)  # min-max over -400..400, not the file's 40/400 window


# --- intensity of ordinary images ----------------------------------------------------------------


@pytest.mark.parametrize("shape, size, channels", [((40, 30), 16, 1), ((30, 41, 3), 16, 3), ((30, 41, 3), 28, 1),
                                                   ((33, 33), 64, 3), ((20, 50), 20, 1)])
def test_8bit_crop_path_equals_conform(shape, size, channels):
    img = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    out = preprocess(png8(img), P(), size=size, channels=channels)
    np.testing.assert_array_equal(out, conform(img, size, channels))


def test_16bit_image_uses_its_full_range():
    ramp = np.tile(np.linspace(1000, 40000, 256), (256, 1))
    out = preprocess(png16(ramp), P(), size=256)
    assert out.min() == 0 and out.max() == 255
    assert len(np.unique(out)) > 200
    assert (np.diff(out[0].astype(int)) >= 0).all()


def test_minmax_ignores_a_few_hot_pixels():
    img = np.tile(np.linspace(0, 1000, 100), (100, 1))
    img[0, :5] = 65535  # 0.05% of pixels: below the 99.5th percentile
    out = preprocess(png16(img), P(), size=100)
    assert out[50, -1] == 255 and out[50, 50] > 100


@pytest.mark.parametrize("preset", PRESETS)
def test_constant_image_gives_finite_uint8(preset):
    dec = Decoded(np.full((32, 32, 1), 7.0, np.float32), source="dicom", modality="CT", hounsfield=True,
                  bit_depth=16, value_range=None)
    out = preprocess(dec, P(preset=preset), size=16)
    assert out.dtype == np.uint8 and out.shape[:2] == (16, 16)
    if preset in ("none", "xray", "mri"):
        assert (out == 0).all()


def test_nan_pixels_become_the_darkest_value():
    vol = np.tile(np.linspace(0, 100, 16), (16, 1)).astype(np.float32)
    vol[:4] = np.nan
    dec = Decoded(vol[..., None], source="nifti", bit_depth=32, value_range=None)
    out = preprocess(dec, P(), size=16)
    assert (out[:4] == 0).all() and out.max() == 255


def test_mri_zscore_puts_the_foreground_mean_at_128():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    disc = (yy - 48) ** 2 + (xx - 48) ** 2 < 30 ** 2
    img = np.where(disc, rng.normal(400, 40, (96, 96)), np.abs(rng.normal(0, 5, (96, 96))))
    dec = Decoded(img[..., None].astype(np.float32), source="nifti", modality="MR", bit_depth=32, value_range=None)
    out = preprocess(dec, P(preset="mri"), size=96)[..., 0]
    assert abs(out[disc].mean() - 128) < 2
    assert (out[~disc] == 0).all()
    assert 30 < out[disc].std() < 50  # one std is 255/6 = 42.5


# --- modality steps ------------------------------------------------------------------------------


def test_clahe_increases_local_contrast():
    yy, xx = np.mgrid[:128, :128]
    texture = np.sin(xx / 2.0) * np.sin(yy / 2.0)
    # a low-contrast 8-bit image: the std of a tile grows
    low = np.rint(110 + 10 * texture + 0.1 * yy)
    tile = (slice(48, 80), slice(48, 80))
    plain = preprocess(png8(low), P(), size=128).astype(float)
    assert preprocess(png8(low), P(clahe=True), size=128)[tile].std() > 3 * plain[tile].std()
    # a faint texture on a strong gradient, already stretched to 0-255 by min-max: CLAHE still enhances the
    # texture (the high-pass part), which a global stretch cannot
    img = 20000 + 200 * xx + 300 * texture

    def high_pass(a):
        a = a[..., 0].astype(float)
        return (a - uniform_filter(a, 7))[16:-16, 16:-16].std()

    plain = high_pass(preprocess(png16(img), P(), size=128))
    assert high_pass(preprocess(png16(img), P(clahe=True), size=128)) > 1.5 * plain
    assert high_pass(preprocess(png16(img), P(preset="xray"), size=128)) > 1.5 * plain


def test_clahe_on_colour_keeps_hue():
    rng = np.random.default_rng(0)
    grey = rng.uniform(0.3, 0.4, (64, 64))
    rgb = (np.stack([grey, 0.5 * grey, 0.25 * grey], axis=2) * 255).round()
    out = preprocess(png8(rgb), P(clahe=True), size=64).astype(float)
    bright = out[..., 0] > 60
    np.testing.assert_allclose(out[..., 1][bright] / out[..., 0][bright], 0.5, atol=0.03)
    assert out[..., 0].std() > 2 * rgb[..., 0].std()


def test_colour_clahe_equals_scikit_image_hsv_value():
    from skimage.exposure import equalize_adapthist

    from medclass.transforms.preprocess import _clahe

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (64, 48, 3)).astype(np.float32) * [1.0, 0.7, 0.4]
    np.testing.assert_allclose(_clahe(x.astype(np.float32), 0.02, per_channel=False),
                               equalize_adapthist(x, clip_limit=0.02), atol=1e-5)


def fundus(h: int, w: int, radius: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - h / 2 + 0.5) ** 2 + (xx - w / 2 + 0.5) ** 2 < radius ** 2
    rgb = np.where(disc[..., None], [180, 90, 40], 0) + rng.integers(0, 6, (h, w, 3))  # black border, JPEG-ish noise
    return rgb


@pytest.mark.parametrize("scale", [1, 6])  # 6: 960x1440, shrunk to the working resolution first
def test_fov_crop_crops_to_the_disc(scale):
    img = fundus(160 * scale, 240 * scale, 60 * scale)
    cfg = P(fov_crop=True)
    out = preprocess(png8(img), cfg, size=60)
    inside = out[..., 0] > 100
    assert abs(inside.mean() - np.pi / 4) < 0.03  # the disc fills the square
    assert inside[30, 1] and inside[1, 30] and inside[30, -2] and inside[-2, 30]  # touches all four sides
    assert not inside[2, 2] and not inside[-3, -3]
    without = preprocess(png8(img), P(), size=60)[..., 0] > 100
    assert without.mean() < 0.6


def test_fov_crop_keeps_a_cut_disc_round_and_centred():
    img = fundus(100, 200, 60)  # disc cut at the top and bottom
    out = preprocess(png8(img), P(fov_crop=True), size=120)[..., 0] > 100
    rows = np.flatnonzero(out.any(axis=1))
    assert abs(rows[0] - (119 - rows[-1])) <= 1 and 95 <= rows.size <= 105
    assert out[60, 1] and out[60, -2]


def test_color_constancy_removes_a_uniform_cast():
    rng = np.random.default_rng(0)
    grey = rng.uniform(40, 200, (48, 48))
    cast = np.stack([grey, 0.8 * grey, 0.6 * grey], axis=2)
    out = preprocess(png8(cast), P(preset="dermatology"), size=48).astype(float)
    means = out.mean(axis=(0, 1))
    assert means.max() - means.min() < 1.0, means
    raw = cast.mean(axis=(0, 1))
    assert raw.max() - raw.min() > 40
    # grey images are unchanged
    g = preprocess(png8(grey), P(preset="dermatology"), size=48)
    np.testing.assert_array_equal(g, preprocess(png8(grey), P(), size=48))


# --- geometry and channels -----------------------------------------------------------------------


def test_pad_keeps_aspect_with_a_centred_band():
    wide = np.full((40, 120), 255)
    out = preprocess(png8(wide), P(resize="pad"), size=60)[..., 0]
    bright = np.flatnonzero(out[:, 30] > 128)
    assert 19 <= bright.size <= 21 and bright[0] == 60 - 1 - bright[-1]
    assert (out[:5] == 0).all() and (out[-5:] == 0).all()
    assert (preprocess(png8(wide), P(resize="stretch"), size=60) == 255).all()
    assert (preprocess(png8(wide), P(resize="crop"), size=60) == 255).all()


def test_float_path_pad_and_stretch_shapes():
    wide = np.tile(np.linspace(0, 4000, 90), (30, 1))
    for mode in ("crop", "pad", "stretch"):
        out = preprocess(png16(wide), P(resize=mode), size=24, channels=3)
        assert out.shape == (24, 24, 3)
    stretch = preprocess(png16(wide), P(resize="stretch"), size=24)[..., 0]
    assert stretch[:, 0].max() < 20 and stretch[:, -1].min() > 235  # whole width kept


def test_grey_replicates_to_three_channels_and_colour_becomes_luma():
    img = np.tile(np.linspace(0, 60000, 40), (40, 1))
    one = preprocess(png16(img), P(), size=20)
    three = preprocess(png16(img), P(), size=20, channels=3)
    assert one.shape == (20, 20, 1) and three.shape == (20, 20, 3)
    for c in range(3):
        np.testing.assert_array_equal(three[..., c], one[..., 0])
    red = np.zeros((8, 8, 3))
    red[..., 0], red[0, 0] = 60000, 0  # one black pixel so min-max keeps red at 1.0
    assert preprocess(png16(red), P(), size=8, channels=1)[4, 4, 0] == round(0.299 * 255)


def test_bad_pixels_and_arguments():
    with pytest.raises(DataError, match="x.png: decoded pixels must be"):
        preprocess(Decoded(np.zeros((4, 4, 2), np.float32)), P(), size=4, where="x.png")
    with pytest.raises(DataError, match="too small"):
        preprocess(Decoded(np.zeros((1, 4, 1), np.float32)), P(), size=4)
    with pytest.raises(DataError, match="NaN"):
        preprocess(Decoded(np.full((4, 4, 1), np.nan, np.float32)), P(), size=4)
    with pytest.raises(ConfigError, match="channels"):
        preprocess(png8(np.zeros((4, 4))), P(), size=4, channels=2)


# --- resolving presets ---------------------------------------------------------------------------


def test_presets_expand_and_switches_add():
    s = resolve_steps(P(preset="xray"))
    assert (s.intensity, s.clahe, s.fov_crop) == ("minmax", True, False)
    s = resolve_steps(P(preset="fundus", color_constancy=True))
    assert s.fov_crop and s.clahe and s.color_constancy and s.intensity == "auto"
    assert resolve_steps(P(preset="dermatology")).color_constancy
    assert resolve_steps(P(preset="mri")).intensity == "zscore"
    s = resolve_steps(P(preset="ct-multi"))
    assert s.window_names == ("lung", "mediastinum", "bone") and s.needs_hu
    s = resolve_steps(P(preset="ct-multi", windows=("brain",)))  # windows override the preset's
    assert s.windows == (CT_WINDOW_SETTINGS["brain"],)
    s = resolve_steps(P(preset="ct-lung", window_center=0, window_width=100))
    assert s.windows == ((0.0, 100.0),) and not s.needs_hu
    assert resolve_steps(P()) == resolve_steps(P(preset="none"))
    assert "CLAHE" in resolve_steps(P(preset="fundus")).describe()
    assert output_channels(P(), 3) == 3 and output_channels(P(preset="ct-brain"), 1) == 1


@pytest.mark.parametrize("cfg, match", [
    (P(preset="ct-lungs"), "Did you mean 'ct-lung'"),
    (P(windows=("lungs",)), "unknown CT window 'lungs'"),
    (P(window_center=40), "given together"),
    (P(windows=("lung",), zscore_foreground=True), "choose one"),
    (P(windows=("lung", "bone")), "1 window, or 3"),
])
def test_contradictory_settings_raise(cfg, match):
    with pytest.raises(ConfigError, match=match):
        resolve_steps(cfg)

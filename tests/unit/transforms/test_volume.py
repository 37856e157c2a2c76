"""3D preprocessing (medclass/transforms/volume.py): the 2D presets' intensity semantics, geometry in mm."""

from __future__ import annotations

import numpy as np
import pytest

from medclass.config import PreprocessConfig
from medclass.errors import ConfigError, DataError
from medclass.transforms.preprocess import CT_WINDOW_SETTINGS, window
from medclass.transforms.volume import plan_geometry, preprocess_volume, resample_volume

CT = {"hounsfield": True, "modality": "CT", "source": "dicom-series"}


def _hu(shape=(8, 12, 12), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1100, 2000, size=shape).astype(np.float32)


@pytest.mark.parametrize("name", sorted(CT_WINDOW_SETTINGS))
def test_each_ct_window_equals_the_2d_window(name):
    x = _hu()
    out = preprocess_volume(x, CT, PreprocessConfig(preset=f"ct-{name}"), size=x.shape)
    c, w = CT_WINDOW_SETTINGS[name]
    assert out.shape == (8, 12, 12, 1) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], np.rint(window(x, c, w) * 255).astype(np.uint8))


def test_ct_multi_stacks_lung_mediastinum_and_bone():
    x = np.full((4, 6, 6), -1000.0, np.float32)  # air
    x[:, 2:4, 2:4] = 40.0  # soft tissue
    out = preprocess_volume(x, CT, PreprocessConfig(preset="ct-multi"), size=(4, 6, 6))
    assert out.shape == (4, 6, 6, 3)
    # air: lung (-1000 + 1350) / 1500 = 0.233 -> 60; black in the mediastinum and bone windows
    assert tuple(out[0, 0, 0]) == (60, 0, 0)
    # 40 HU: lung (40 + 1350) / 1500 -> 236, mediastinum (40 + 125) / 350 -> 120, bone (40 + 500) / 1800 -> 76
    assert tuple(out[0, 2, 2]) == (236, 120, 76)
    with pytest.raises(ConfigError, match="stacks 3 windows as channels, but 1 channel"):
        preprocess_volume(x, CT, PreprocessConfig(preset="ct-multi"), size=4, channels=1)


def test_a_ct_window_needs_hounsfield_units():
    with pytest.raises(DataError, match=r"mr.nii: preset ct-lung applies CT windows \(lung: centre -600, width 1500 "
                                        r"HU\).*not \(source nifti, modality unknown\).*window_center"):
        preprocess_volume(_hu(), {"source": "nifti"}, PreprocessConfig(preset="ct-lung"), size=8, where="mr.nii")
    custom = preprocess_volume(_hu(), {"source": "nifti"}, PreprocessConfig(window_center=0, window_width=200),
                               size=(8, 12, 12))
    assert np.array_equal(custom[..., 0], np.rint(window(_hu(), 0, 200) * 255).astype(np.uint8))


def test_2d_photograph_steps_are_refused_for_volumes():
    with pytest.raises(ConfigError, match="data.preprocess clahe \\(from 'xray' or set directly\\) is a 2D step"):
        preprocess_volume(_hu(), CT, PreprocessConfig(preset="xray"), size=8)
    with pytest.raises(ConfigError, match="fov_crop, clahe .* are 2D steps"):
        preprocess_volume(_hu(), CT, PreprocessConfig(preset="fundus"), size=8)


def test_mri_zscore_puts_the_foreground_mean_mid_grey_and_the_background_black():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 2, size=(16, 16, 16)).astype(np.float32)  # background noise
    x[4:12, 4:12, 4:12] = rng.normal(400, 50, size=(8, 8, 8))
    out = preprocess_volume(x, {"modality": "MR"}, PreprocessConfig(preset="mri"), size=16)[..., 0]
    fg = out[4:12, 4:12, 4:12]
    assert abs(float(fg.mean()) - 127.5) < 3 and (out[:3] == 0).all() and (out[13:] == 0).all()


def test_min_max_stretches_percentiles_and_keeps_8_bit_volumes_exact():
    x = _hu()
    out = preprocess_volume(x, None, PreprocessConfig(), size=x.shape)[..., 0]
    assert out.min() == 0 and out.max() == 255
    lo, hi = np.percentile(x, (0.5, 99.5))
    expected = np.rint(np.clip((x - lo) / (hi - lo), 0, 1) * 255)
    assert np.abs(out.astype(int) - expected).max() <= 1
    mask = (np.random.default_rng(1).random((28, 28, 28)) > 0.7).astype(np.uint8) * 255  # MedMNIST 3D layout
    assert np.array_equal(preprocess_volume(mask, None, PreprocessConfig(), size=28)[..., 0], mask)
    assert (preprocess_volume(np.full((4, 4, 4), 7.0), None, PreprocessConfig(), size=4) == 0).all()  # constant
    nan = _hu()
    nan[0] = np.nan
    assert preprocess_volume(nan, None, PreprocessConfig(), size=nan.shape)[0].max() == 0  # NaN = darkest


def test_grey_to_three_channels_repeats():
    out = preprocess_volume(_hu(), CT, PreprocessConfig(preset="ct-brain"), size=8, channels=3)
    assert out.shape == (8, 8, 8, 3) and (out[..., 0] == out[..., 2]).all()


def test_target_spacing_keeps_the_physical_extent_and_the_position_of_structures():
    x = np.zeros((10, 20, 30), np.float32)
    x[4:6, 8:12, 20:26] = 1000.0  # a bright block, off centre
    sp = (2.5, 0.5, 0.5)
    g = plan_geometry(x.shape, sp, None, target_spacing=1.0)
    assert g.resampled_shape == g.output_shape == (25, 10, 15) and g.output_spacing == (1.0, 1.0, 1.0)
    out = preprocess_volume(x, {"spacing": sp}, PreprocessConfig(window_center=500, window_width=1000), size=None,
                            spacing=1.0).astype(float)[..., 0]
    assert out.shape == (25, 10, 15)

    def centre_mm(v, spacing):
        idx = np.indices(v.shape).reshape(3, -1) + 0.5
        return (idx * v.ravel()).sum(1) / v.sum() * np.array(spacing)

    assert np.allclose(centre_mm(out, (1, 1, 1)), centre_mm(x, sp), atol=0.3)  # within a third of a voxel
    assert out.sum() == pytest.approx(255 * (2 * 2.5) * (4 * 0.5) * (6 * 0.5), rel=0.05)  # the same 30 mm³
    # a field of view of size x spacing mm, centred: padded with black where the volume ends
    cube = preprocess_volume(x, {"spacing": sp}, PreprocessConfig(window_center=500, window_width=1000), size=32,
                             spacing=1.0)[..., 0]
    assert cube.shape == (32, 32, 32) and (cube[:3] == 0).all() and (cube[:, :11] == 0).all()


@pytest.mark.parametrize("resize,resampled", [("crop", (20, 80, 120)), ("pad", (3, 13, 20)), ("stretch", (20, 20, 20))])
def test_crop_pad_and_stretch_work_in_millimetres(resize, resampled):
    g = plan_geometry((10, 20, 30), (1.0, 2.0, 2.0), 20, resize=resize)  # extent 10 x 40 x 60 mm
    assert g.resampled_shape == resampled and g.output_shape == (20, 20, 20)
    x = np.ones((10, 20, 30), np.float32) * 100
    x[0, 0, 0] = 0
    out = preprocess_volume(x, {"spacing": (1.0, 2.0, 2.0)}, PreprocessConfig(resize=resize), size=20)[..., 0]
    assert out.shape == (20, 20, 20)
    if resize == "pad":  # 3 x 13 x 20 voxels of content, centred; the rest is black
        assert (out[:8] == 0).all() and (out[11:] == 0).all() and (out[:, :3] == 0).all()
        assert out[9, 4:15].mean() > 200
    else:
        assert out[10].mean() > 200


def test_an_unknown_spacing_counts_as_one_millimetre():
    assert plan_geometry((10, 20, 20), (None, None, None), 10, resize="pad").resampled_shape == (5, 10, 10)
    assert plan_geometry((10, 20, 20), None, 10, resize="crop").resampled_shape == (10, 20, 20)


def test_a_volume_over_the_memory_budget_is_refused_before_any_work():
    with pytest.raises(DataError, match=r"ct/: 300x512x512 voxels of 0.7x0.7x0.7 mm would become 840x1434x1434 "
                                        r"resampled voxels \(1727M\), more than the budget of 134M. Choose a coarser "
                                        r"target spacing \(at least 0.59 mm isotropic fits\)"):
        plan_geometry((300, 512, 512), (0.7, 0.7, 0.7), None, target_spacing=0.25, where="ct/")
    with pytest.raises(DataError, match="more than the budget of 0M"):
        preprocess_volume(np.zeros((4, 4, 4)), {"spacing": (100, 100, 100)}, size=None, spacing=0.5, max_voxels=1000)
    with pytest.raises(ConfigError, match="give an output size, a target spacing, or both"):
        plan_geometry((4, 4, 4), None, None)
    with pytest.raises(ConfigError, match="size must be positive"):
        plan_geometry((4, 4, 4), None, (4, 0, 4))


def test_resample_volume_is_the_identity_at_the_same_shape_and_anti_aliases_when_shrinking():
    x = np.random.default_rng(0).random((6, 8, 10)).astype(np.float32)
    assert np.array_equal(resample_volume(x, (6, 8, 10)).numpy(), x)
    stripes = np.zeros((16, 16, 16), np.float32)
    stripes[:, :, ::2] = 1.0  # a 2-voxel period: must average out, not alias, when halved
    half = resample_volume(stripes, (16, 16, 8)).numpy()
    assert np.abs(half[4:-4, 4:-4, 2:-2] - 0.5).max() < 0.1

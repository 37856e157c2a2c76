"""Decoding files: real DICOM from pydicom's test files and pydicom-data, NIfTI, 8- and 16-bit images.

The DICOM files are real scans (CT, MR, CR, US, NM) in many encodings; where a file exists both compressed
and uncompressed, the lossless decode must equal the uncompressed pixels exactly. ``download=False`` keeps
pydicom from reaching the network for a file that is not installed (the test is skipped instead).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from medclass.data.images import read_image
from medclass.data.readers import Decoded, image_format, read_dicom, read_file, read_nifti, read_volume
from medclass.errors import DataError


def _path(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"Requires: pydicom test file {name} (pip install pydicom-data)")
    return path


def _ds(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(_path(name))


# --- DICOM: units, windows, photometric interpretations -------------------------------------------------


def test_ct_rescale_gives_hounsfield_units():
    ds = _ds("CT_small.dcm")
    dec = read_file(_path("CT_small.dcm"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert dec.hounsfield and dec.modality == "CT" and dec.source == "dicom" and dec.n_frames == 1
    assert dec.pixels.dtype == np.float32 and dec.pixels.shape == (128, 128, 1)
    assert np.array_equal(dec.pixels[..., 0], expected.astype(np.float32))
    assert dec.bit_depth == 16 and dec.value_range is None


def test_non_unit_rescale_slope_is_applied():
    ds = _ds("MR2_UNCR.dcm")  # a real MR with RescaleSlope 3.774114
    assert float(ds.RescaleSlope) != 1
    dec = read_dicom(_path("MR2_UNCR.dcm"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.allclose(dec.pixels[..., 0], expected, rtol=1e-6) and not dec.hounsfield  # MR: not HU


def test_window_is_read_and_the_first_of_several_values_is_taken(tmp_path):
    assert read_file(_path("MR_small.dcm")).window == (600.0, 1600.0)
    assert read_file(_path("693_UNCR.dcm")).window == (40.0, 100.0)
    ds = _ds("CT_small.dcm")
    ds.WindowCenter, ds.WindowWidth = [40, -600], [400, 1500]  # mediastinum and lung, as scanners store them
    ds.save_as(tmp_path / "two_windows.dcm")
    assert read_file(tmp_path / "two_windows.dcm").window == (40.0, 400.0)
    del ds.WindowCenter, ds.WindowWidth
    ds.save_as(tmp_path / "no_window.dcm")
    assert read_file(tmp_path / "no_window.dcm").window is None


@pytest.mark.parametrize("name,bits", [("RG3_UNCR.dcm", 10), ("RG1_UNCR.dcm", 15)])
def test_monochrome1_radiograph_is_inverted_within_the_stored_range(name, bits):
    ds = _ds(name)  # real computed radiographs stored as MONOCHROME1 (low values bright)
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.BitsStored == bits
    dec = read_file(_path(name))
    top = 2 ** bits - 1
    assert np.array_equal(dec.pixels[..., 0], top - ds.pixel_array.astype(np.float32))
    # the stored window is inverted with the pixels, so it still selects the same tissue
    assert dec.window == (top - float(ds.WindowCenter), float(ds.WindowWidth))
    assert dec.modality == "CR" and not dec.hounsfield


def test_monochrome1_is_inverted_after_the_modality_lut(tmp_path):
    ds = _ds("RG3_UNCR.dcm")
    ds.RescaleSlope, ds.RescaleIntercept = 2, -100
    ds.save_as(tmp_path / "rescaled.dcm")
    raw = ds.pixel_array.astype(np.float32)
    lo, hi = -100.0, 2 * 1023 - 100.0  # the 10-bit stored range through the rescale
    assert np.array_equal(read_file(tmp_path / "rescaled.dcm").pixels[..., 0], lo + hi - (2 * raw - 100))


@pytest.mark.parametrize("compressed,plain", [
    ("MR_small_RLE.dcm", "MR_small.dcm"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
    ("RG1_J2KR.dcm", "RG1_UNCR.dcm"),  # MONOCHROME1, 15 bit
    ("693_J2KR.dcm", "693_UNCR.dcm"),  # CT, HU
    ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),  # MR with a rescale slope
    ("US1_J2KR.dcm", "US1_UNCR.dcm"),  # colour ultrasound, JPEG 2000 reversible colour transform
    ("SC_rgb_rle.dcm", "SC_rgb.dcm"),
    ("SC_rgb_rle_2frame.dcm", "SC_rgb_2frame.dcm"),
    ("emri_small_RLE.dcm", "emri_small.dcm"),  # multi-frame MR
    ("OBXXXX1A_rle.dcm", "OBXXXX1A.dcm"),  # palette-colour ultrasound
])
def test_lossless_compression_decodes_to_the_uncompressed_pixels(compressed, plain):
    a, b = read_file(_path(compressed)), read_file(_path(plain))
    assert a.pixels.shape == b.pixels.shape and np.array_equal(a.pixels, b.pixels)
    assert (a.window, a.hounsfield, a.n_frames) == (b.window, b.hounsfield, b.n_frames)


def test_colour_dicom_is_rgb_and_ybr_is_converted():
    rgb = read_file(_path("SC_rgb.dcm"))
    assert rgb.pixels.shape == (100, 100, 3) and rgb.value_range == (0.0, 255.0) and rgb.bit_depth == 8
    assert np.array_equal(rgb.pixels, _ds("SC_rgb.dcm").pixel_array.astype(np.float32))
    for name in ("SC_ybr_full_uncompressed.dcm", "SC_rgb_jpeg_dcmtk.dcm"):  # YBR_FULL, raw and JPEG baseline
        ybr = read_file(_path(name))
        diff = np.abs(rgb.pixels - ybr.pixels)  # YCbCr rounding (and JPEG loss) only: same colours
        assert ybr.pixels.shape == (100, 100, 3) and diff.mean() < 2 and diff.max() <= 40, name


def test_palette_colour_becomes_8_bit_rgb():
    from pydicom.pixels import apply_color_lut

    ds = _ds("OBXXXX1A.dcm")  # a real ultrasound stored as PALETTE COLOR with 16-bit LUT entries
    dec = read_file(_path("OBXXXX1A.dcm"))
    expected = (apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.float32)
    assert dec.pixels.shape == (600, 800, 3) and np.array_equal(dec.pixels, expected)
    assert dec.bit_depth == 8 and dec.value_range == (0.0, 255.0) and dec.pixels.max() <= 255
    two = read_file(_path("OBXXXX1A_2frame.dcm"), frame=1)
    frames = _ds("OBXXXX1A_2frame.dcm").pixel_array
    assert two.n_frames == 2 and np.array_equal(two.pixels, (apply_color_lut(frames[1], ds) >> 8).astype(np.float32))


def test_multiframe_dicom_picks_a_frame():
    name = "emri_small.dcm"  # 10 real MR frames
    frames = _ds(name).pixel_array
    path = _path(name)
    assert read_file(path).n_frames == 10
    assert np.array_equal(read_file(path).pixels[..., 0], frames[5])  # the middle one
    assert np.array_equal(read_file(path, frame=0).pixels[..., 0], frames[0])
    assert np.array_equal(read_file(path, frame=-1).pixels[..., 0], frames[9])
    assert np.array_equal(read_file(path, frame="3").pixels[..., 0], frames[3])
    with pytest.raises(DataError, match=r"emri_small\.dcm' has 10 frame\(s\); frame 10 does not exist"):
        read_file(path, frame=10)
    with pytest.raises(DataError, match="frame must be 'middle' or an index; got 'first'"):
        read_file(path, frame="first")
    with pytest.raises(DataError, match="has 1 frame"):
        read_file(_path("CT_small.dcm"), frame=1)


def test_enhanced_ct_takes_rescale_and_window_from_the_functional_groups(tmp_path):
    ds = _ds("eCT_Supplemental.dcm")  # enhanced multi-frame CT: rescale only in the functional groups
    assert "RescaleIntercept" not in ds
    dec = read_file(_path("eCT_Supplemental.dcm"), frame=1)
    assert np.array_equal(dec.pixels[..., 0], ds.pixel_array[1].astype(np.float32) - 1024)
    assert dec.window == (49.0, 102.0)
    assert not dec.hounsfield  # RescaleType 'US' (unspecified): a perfusion map, not Hounsfield units
    ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleType = "HU"
    ds.save_as(tmp_path / "ect_hu.dcm")
    assert read_file(tmp_path / "ect_hu.dcm").hounsfield


def test_read_volume_of_a_multiframe_dicom():
    vol, facts = read_volume(_path("emri_small.dcm"))
    assert vol.dtype == np.float32 and vol.shape == (10, 64, 64)
    assert np.array_equal(vol, _ds("emri_small.dcm").pixel_array.astype(np.float32))
    assert facts["shape"] == [10, 64, 64] and facts["source"] == "dicom" and facts["modality"] == "MR"
    ct, facts = read_volume(_path("CT_small.dcm"))  # one frame: D = 1, in HU
    assert ct.shape == (1, 128, 128) and facts["hounsfield"] and facts["spacing"][1:] == (0.661468, 0.661468)
    assert np.array_equal(ct[0], read_file(_path("CT_small.dcm")).pixels[..., 0])
    with pytest.raises(DataError, match="colour"):
        read_volume(_path("SC_rgb_2frame.dcm"))


# --- DICOM: bad files -------------------------------------------------------------------------------------


def test_unreadable_dicom_files_give_clear_errors(tmp_path):
    with pytest.raises(DataError, match=r"MR_truncated\.dcm'.*truncated or corrupt"):
        read_file(_path("MR_truncated.dcm"))
    with pytest.raises(DataError, match="ends before its pixel data"):
        read_file(_path("emri_small_jpeg_2k_lossless_too_short.dcm"))
    with pytest.raises(DataError, match=r"has no pixel data \(e\.g\. a structured report or DICOMDIR"):
        read_file(_path("DICOMDIR"))
    with pytest.raises(DataError, match="has no pixel data"):
        read_file(_path("reportsi.dcm"))  # a structured report
    fake = tmp_path / "fake.dcm"
    fake.write_bytes(b"\x00" * 300)
    with pytest.raises(DataError, match=r"fake\.dcm' is not a DICOM file"):
        read_file(fake)
    data = Path(_path("CT_small.dcm")).read_bytes()
    (tmp_path / "half.dcm").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"half\.dcm'.*truncated or corrupt"):
        read_file(tmp_path / "half.dcm")
    with pytest.raises(DataError, match="does not exist"):
        read_file(tmp_path / "missing.dcm")


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                                  "SC_rgb_jpeg_dcmtk.dcm", "emri_small.dcm"])
def test_damaged_dicom_files_raise_data_error_only(name, tmp_path):
    # Truncations and flipped bytes all over the file: any failure must be a DataError naming the file (the
    # Rust RLE plugin panics on some of these: pyo3's PanicException is a BaseException, not an Exception).
    data = Path(_path(name)).read_bytes()
    rng = np.random.default_rng(0)
    variants = [data[:cut] for cut in np.linspace(8, len(data) - 2, 12).astype(int)]
    for _ in range(12):
        b = bytearray(data)
        for j in rng.integers(0, len(b), 8):
            b[j] = int(rng.integers(0, 256))
        variants.append(bytes(b))
    path = tmp_path / "damaged.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in variants:
            path.write_bytes(v)
            try:
                dec = read_file(path)
            except DataError as e:
                assert "damaged.dcm" in str(e)
            else:
                assert dec.pixels.ndim == 3 and dec.pixels.dtype == np.float32


def test_missing_decoder_names_the_transfer_syntax_and_the_extra(monkeypatch):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEG2000Lossless

    # as if no JPEG 2000 plugin were installed (pydicom's decoder keeps its usable plugins in `_available`)
    monkeypatch.setattr(get_decoder(JPEG2000Lossless), "_available", {})
    with pytest.raises(DataError, match=r"JPEG 2000 Image Compression \(Lossless Only\)") as e:
        read_file(_path("MR_small_jp2klossless.dcm"))
    assert 'pip install "medclass[dicom-codecs]"' in str(e.value) and "MR_small_jp2klossless.dcm" in str(e.value)


def test_a_file_no_installed_decoder_can_decode_says_so():
    # 12-bit JPEG Extended: libjpeg (pylibjpeg) rejects this file's markers and Pillow has no 12-bit JPEG
    try:
        dec = read_file(_path("JPEG-lossy.dcm"))
    except DataError as e:
        assert "JPEG Extended" in str(e) and 'medclass[dicom-codecs]' in str(e) and "python-gdcm" in str(e)
    else:  # a decoder that handles it became available: the file simply decodes
        assert dec.pixels.shape == (1024, 256, 1)


# --- privacy ----------------------------------------------------------------------------------------------

IDENTIFYING = {"PatientName": "Doe^Jane", "PatientID": "PID-7730015", "PatientBirthDate": "19700101",
               "InstitutionName": "St Example", "ReferringPhysicianName": "Smith^Quentin", "StudyDate": "20230405"}


def _leaks(text: str) -> list[str]:
    return [v for v in IDENTIFYING.values() for needle in (v, v.replace("^", " ")) if needle in text]


def test_identifying_header_fields_never_reach_results_errors_or_logs(tmp_path, caplog):
    ds = _ds("emri_small.dcm")  # 10 frames, so a bad frame index is an error path
    for keyword, value in IDENTIFYING.items():
        setattr(ds, keyword, value)
    ds.save_as(tmp_path / "patient.dcm")
    assert "Doe^Jane" in str(pydicom.dcmread(tmp_path / "patient.dcm").PatientName)  # the header does hold it
    texts = []
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dec = read_file(tmp_path / "patient.dcm")
        texts += [repr(dec), str(dec), repr(read_volume(tmp_path / "patient.dcm")[1])]
        with pytest.raises(DataError) as bad_frame:
            read_file(tmp_path / "patient.dcm", frame=99)
        texts.append(str(bad_frame.value))
        data = (tmp_path / "patient.dcm").read_bytes()
        (tmp_path / "cut.dcm").write_bytes(data[: len(data) - 3000])  # truncated pixel data
        with pytest.raises(DataError) as cut:
            read_file(tmp_path / "cut.dcm")
        texts.append(str(cut.value))
        del ds.PixelData
        ds.save_as(tmp_path / "nopixels.dcm")
        with pytest.raises(DataError) as nopix:
            read_file(tmp_path / "nopixels.dcm")
        texts.append(str(nopix.value))
    texts += [r.getMessage() for r in caplog.records] + [str(w.message) for w in caught]
    assert "frame 99 does not exist" in texts[3] and "truncated" in texts[4] and "no pixel data" in texts[5]
    assert not [leak for t in texts for leak in _leaks(t)]
    # and the result holds only technical fields
    assert {f.name for f in dataclasses.fields(Decoded)} == {
        "pixels", "source", "modality", "hounsfield", "window", "bit_depth", "value_range", "n_frames",
        "photometric", "spacing"}


def test_decoded_repr_is_short_and_holds_no_pixels():
    d = read_file(_path("CT_small.dcm"))
    assert "modality='CT'" in repr(d) and "(128, 128, 1)" in repr(d) and len(repr(d)) < 250


# --- ordinary images --------------------------------------------------------------------------------------


def test_sixteen_bit_png_and_tiff_keep_their_values(tmp_path):
    a = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 13 % 65536).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(a).save(tmp_path / "a.tif")
    Image.fromarray(a.astype(">u2")).save(tmp_path / "big_endian.tif")  # Pillow mode I;16B
    assert Image.open(tmp_path / "big_endian.tif").mode == "I;16B"
    for f in ("a.png", "a.tif", "big_endian.tif"):
        dec = read_file(tmp_path / f)
        assert dec.bit_depth == 16 and dec.value_range == (0.0, 65535.0) and dec.source == "image", f
        assert dec.pixels.shape == (64, 64, 1) and np.array_equal(dec.pixels[..., 0], a.astype(np.float32)), f


def test_32_bit_integer_and_float_tiffs_keep_their_values(tmp_path):
    i32 = (np.arange(32 * 32, dtype=np.int32).reshape(32, 32) - 500) * 300  # beyond 16 bits, negative too
    f32 = np.linspace(-1000.5, 3000.25, 32 * 32, dtype=np.float32).reshape(32, 32)
    Image.fromarray(i32).save(tmp_path / "i.tif")
    Image.fromarray(f32).save(tmp_path / "f.tif")
    for name, a in (("i.tif", i32), ("f.tif", f32)):
        dec = read_file(tmp_path / name)
        assert dec.bit_depth == 32 and dec.value_range is None
        assert np.array_equal(dec.pixels[..., 0], a.astype(np.float32)), name


def test_eight_bit_images_decode_like_read_image(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(grey).convert("P").save(tmp_path / "grey_palette.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "colour_palette.png")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(grey).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(grey).convert("1").save(tmp_path / "bw.png")
    Image.fromarray(rgb).save(tmp_path / "c.bmp")
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    channels = {"g.png": 1, "c.png": 3, "grey_palette.png": 1, "colour_palette.png": 3, "rgba.png": 3, "la.png": 1,
                "bw.png": 1, "c.bmp": 3, "c.jpg": 3}
    for name, c in channels.items():
        dec = read_file(tmp_path / name)
        assert dec.pixels.shape == (20, 30, c) and dec.bit_depth == 8 and dec.value_range == (0.0, 255.0), name
        assert np.array_equal(dec.pixels, read_image(tmp_path / name).astype(np.float32)), name
    assert np.array_equal(read_file(tmp_path / "g.png").pixels[..., 0], grey)


def test_multipage_tiff_picks_a_page(tmp_path):
    pages = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 20, 30, 40)]
    pages[0].save(tmp_path / "m.tif", save_all=True, append_images=pages[1:])
    assert read_file(tmp_path / "m.tif").n_frames == 4
    assert read_file(tmp_path / "m.tif").pixels[0, 0, 0] == 30  # the middle page
    assert read_file(tmp_path / "m.tif", frame=0).pixels[0, 0, 0] == 10
    with pytest.raises(DataError, match="has 4 frame"):
        read_file(tmp_path / "m.tif", frame=4)


def test_corrupt_and_truncated_images_raise_data_error(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ok.jpg")
    for name in ("ok.png", "ok.jpg"):
        data = (tmp_path / name).read_bytes()
        cut = tmp_path / f"cut{(tmp_path / name).suffix}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(DataError, match=rf"'{cut}' could not be read"):
            read_file(cut)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="notes.png' could not be read.*PNG, JPEG, TIFF"):
        read_file(tmp_path / "notes.png")


# --- NIfTI ----------------------------------------------------------------------------------------------


def _vol() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(12, 10, 7)).astype(np.float32)  # (x, y, z), RAS


def test_nifti_slices_are_shown_as_a_dicom_viewer_shows_the_plane(tmp_path):
    import nibabel as nib

    vol = _vol()
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")
    dec = read_file(tmp_path / "v.nii.gz")
    assert dec.source == "nifti" and dec.n_frames == 7 and dec.pixels.shape == (10, 12, 1)
    assert np.array_equal(dec.pixels[..., 0], np.flip(vol[:, :, 3].T))  # middle axial slice
    assert np.array_equal(dec.pixels[..., 0], np.fliplr(np.rot90(vol[:, :, 3])))  # = rot90, mirrored
    assert np.array_equal(read_file(tmp_path / "v.nii.gz", frame=0).pixels[..., 0], np.flip(vol[:, :, 0].T))
    sagittal = read_nifti(tmp_path / "v.nii.gz", frame=2, slice_axis=0)
    assert sagittal.n_frames == 12 and np.array_equal(sagittal.pixels[..., 0], np.flip(vol[2].T))
    coronal = read_nifti(tmp_path / "v.nii.gz", frame=-1, slice_axis=1)
    assert coronal.n_frames == 10 and np.array_equal(coronal.pixels[..., 0], np.flip(vol[:, 9].T))
    with pytest.raises(DataError, match="has 7 frame"):
        read_file(tmp_path / "v.nii.gz", frame=7)
    with pytest.raises(DataError, match="slice_axis must be 0"):
        read_file(tmp_path / "v.nii.gz", slice_axis=3)


def test_nifti_anatomy_lands_where_a_radiologist_expects_it(tmp_path):
    import nibabel as nib

    vol = np.zeros((12, 10, 7), np.float32)
    vol[-1, -1, 3] = 1  # axial slice 3: the patient's right (x max) and anterior (y max) corner
    vol[5, 4, -1] = 2  # the most superior voxel
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "marks.nii")
    axial = read_file(tmp_path / "marks.nii").pixels[..., 0]
    assert axial[0, 0] == 1  # anterior at the top, the patient's right on the image's left
    coronal = read_nifti(tmp_path / "marks.nii", frame=4, slice_axis=1).pixels[..., 0]
    assert coronal[0].max() == 2  # superior at the top


@pytest.mark.parametrize("stored", ["LPS", "permuted"])
def test_nifti_storage_order_does_not_change_the_slice(stored, tmp_path):
    import nibabel as nib

    vol = _vol()
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "ras.nii.gz")
    if stored == "LPS":  # x and y reversed, as DICOM converters often write
        data, affine = vol[::-1, ::-1, :], np.diag([-1.0, -1.0, 1.0, 1.0])
    else:  # stored (z, x, y): the first voxel axis runs superior
        data, affine = np.transpose(vol, (2, 0, 1)), np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1.]])
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), tmp_path / "other.nii.gz")
    for axis in (0, 1, 2):
        a = read_nifti(tmp_path / "ras.nii.gz", frame=1, slice_axis=axis).pixels
        b = read_nifti(tmp_path / "other.nii.gz", frame=1, slice_axis=axis).pixels
        assert np.array_equal(a, b), axis
    assert np.array_equal(read_volume(tmp_path / "ras.nii.gz")[0], read_volume(tmp_path / "other.nii.gz")[0])


def test_nifti_volume_2d_images_scaling_and_bad_files(tmp_path):
    import nibabel as nib

    vol = _vol()
    nib.save(nib.Nifti1Image(vol, np.diag([0.5, 0.7, 2.0, 1.0])), tmp_path / "v.nii.gz")
    whole, facts = read_volume(tmp_path / "v.nii.gz")
    assert whole.shape == (7, 10, 12) and facts["spacing"] == pytest.approx((2.0, 0.7, 0.5)) and facts["shape"] == [7, 10, 12]
    for k in range(7):  # the volume is the stack of read_nifti's axial slices
        assert np.array_equal(whole[k], read_nifti(tmp_path / "v.nii.gz", frame=k).pixels[..., 0])

    img = nib.Nifti1Image((np.arange(6 * 5) - 10).reshape(6, 5).astype(np.int16), np.eye(4))
    img.header.set_slope_inter(2.0, 5.0)  # stored int16, real values 2 * v + 5
    nib.save(img, tmp_path / "flat.nii")
    flat = read_file(tmp_path / "flat.nii")
    expected = np.flip((2.0 * (np.arange(30) - 10) + 5).reshape(6, 5).T)
    assert flat.pixels.shape == (5, 6, 1) and flat.n_frames == 1 and flat.bit_depth == 16
    assert np.array_equal(flat.pixels[..., 0], expected.astype(np.float32))

    nib.save(nib.Nifti1Image(vol[..., None], np.eye(4)), tmp_path / "one_volume.nii")  # 4D, one volume
    assert np.array_equal(read_file(tmp_path / "one_volume.nii").pixels, read_file(tmp_path / "v.nii.gz").pixels)
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), tmp_path / "t.nii")
    with pytest.raises(DataError, match=r"t\.nii' has shape \(3, 3, 3, 2\): a 4D series"):
        read_file(tmp_path / "t.nii")
    (tmp_path / "bad.nii.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="could not be read"):
        read_file(tmp_path / "bad.nii.gz")
    data = (tmp_path / "v.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: int(len(data) * 0.8)])  # the middle slice is still there
    with pytest.raises(DataError, match=r"cut\.nii\.gz'.*truncated or corrupt"):
        read_file(tmp_path / "cut.nii.gz")


# --- format detection -------------------------------------------------------------------------------------


def test_format_detection_by_name_and_content(tmp_path):
    shutil.copy(_path("CT_small.dcm"), tmp_path / "IM0001")  # DICOM files often have no suffix
    assert image_format(tmp_path / "IM0001") == "dicom" and read_file(tmp_path / "IM0001").hounsfield
    # a real file written without preamble, 'DICM' or meta information (ACR-NEMA style)
    shutil.copy(_path("OT-PAL-8-face.dcm"), tmp_path / "face")
    assert (tmp_path / "face").read_bytes()[128:132] != b"DICM"
    assert image_format(tmp_path / "face") == "dicom" and read_file(tmp_path / "face").pixels.shape == (480, 640, 3)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "noext", format="PNG")
    assert image_format(tmp_path / "noext") == "image" and read_file(tmp_path / "noext").source == "image"
    assert image_format(tmp_path / "x.nii.gz") == "nifti" and image_format(tmp_path / "x.NII") == "nifti"
    assert image_format(tmp_path / "x.png") == "image" and image_format(tmp_path / "x.dcm") == "dicom"
    with pytest.raises(DataError, match="ordinary image file; read_volume reads NIfTI"):
        read_volume(tmp_path / "noext")

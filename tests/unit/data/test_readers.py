"""Decoding files: real DICOM from pydicom's test files and pydicom-data, NIfTI, 8- and 16-bit images."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from medclass.data.readers import Decoded, image_format, read_file, read_volume
from medclass.errors import DataError


def _ds(name: str):
    return pydicom.dcmread(get_testdata_file(name))


def test_ct_rescale_gives_hounsfield_units():
    ds = _ds("CT_small.dcm")
    dec = read_file(get_testdata_file("CT_small.dcm"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert dec.hounsfield and dec.modality == "CT" and dec.source == "dicom"
    assert np.array_equal(dec.pixels[..., 0], expected.astype(np.float32))


def test_mr_is_not_hounsfield_and_keeps_its_display_window():
    dec = read_file(get_testdata_file("MR_small.dcm"))
    assert not dec.hounsfield and dec.modality == "MR" and dec.window == (600.0, 1600.0)


def test_monochrome1_radiograph_is_inverted_so_bright_means_dense():
    name = "RG3_UNCR.dcm"  # a real computed radiograph stored as MONOCHROME1, 10 bits
    ds = _ds(name)
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.BitsStored == 10
    dec = read_file(get_testdata_file(name))
    raw = ds.pixel_array.astype(np.float32)
    assert np.array_equal(dec.pixels[..., 0], 1023 - raw)  # inverted within the 10-bit range


@pytest.mark.parametrize("compressed,plain", [("RG1_J2KR.dcm", "RG1_UNCR.dcm"), ("693_J2KR.dcm", "693_UNCR.dcm"),
                                               ("SC_rgb_rle.dcm", "SC_rgb.dcm"), ("SC_rgb_rle_2frame.dcm", "SC_rgb_2frame.dcm")])
def test_lossless_compression_decodes_to_the_uncompressed_pixels(compressed, plain):
    a, b = read_file(get_testdata_file(compressed)), read_file(get_testdata_file(plain))
    assert np.array_equal(a.pixels, b.pixels)


def test_colour_dicom_is_rgb_and_ybr_is_converted():
    rgb = read_file(get_testdata_file("SC_rgb.dcm"))
    ybr = read_file(get_testdata_file("SC_ybr_full_uncompressed.dcm"))
    assert rgb.pixels.shape == (100, 100, 3) and ybr.pixels.shape == (100, 100, 3)
    diff = np.abs(rgb.pixels - ybr.pixels)  # YBR_FULL -> RGB by pydicom: 8-bit YCbCr quantisation only
    assert diff.mean() < 1 and diff.max() <= 8


def test_multiframe_dicom_picks_a_frame():
    name = "emri_small.dcm"  # 10 real MR frames
    frames = _ds(name).pixel_array
    assert read_file(get_testdata_file(name)).n_frames == 10
    assert np.array_equal(read_file(get_testdata_file(name)).pixels[..., 0], frames[5])  # the middle one
    assert np.array_equal(read_file(get_testdata_file(name), frame=0).pixels[..., 0], frames[0])
    assert np.array_equal(read_file(get_testdata_file(name), frame=-1).pixels[..., 0], frames[9])
    with pytest.raises(DataError, match=r"has 10 frame\(s\); frame 10 does not exist"):
        read_file(get_testdata_file(name), frame=10)
    vol, facts = read_volume(get_testdata_file(name))
    assert vol.shape == (10, 64, 64) and facts["shape"] == [10, 64, 64]


def test_unreadable_dicom_files_give_clear_errors(tmp_path):
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_file(get_testdata_file("MR_truncated.dcm"))
    with pytest.raises(DataError, match="has no pixel data"):
        read_file(get_testdata_file("DICOMDIR"))
    fake = tmp_path / "fake.dcm"
    fake.write_bytes(b"\x00" * 300)
    with pytest.raises(DataError, match="not a DICOM file"):
        read_file(fake)


def test_missing_decoder_names_the_transfer_syntax_and_the_extra():
    # 12-bit JPEG Extended needs GDCM (or a pylibjpeg build with 12-bit support); none is installed here
    try:
        read_file(get_testdata_file("JPEG-lossy.dcm"))
    except DataError as e:
        assert "JPEG Extended" in str(e) and 'medclass[dicom-codecs]' in str(e)
    else:  # a decoder became available: the file simply decodes
        pass


def test_sixteen_bit_png_and_tiff_keep_their_values(tmp_path):
    a = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 13 % 65536).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(a).save(tmp_path / "a.tif")
    for f in ("a.png", "a.tif"):
        dec = read_file(tmp_path / f)
        assert dec.bit_depth == 16 and dec.value_range == (0.0, 65535.0) and dec.source == "image"
        assert np.array_equal(dec.pixels[..., 0], a.astype(np.float32)), f


def test_eight_bit_images(tmp_path):
    grey = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(grey).convert("P").save(tmp_path / "p.png")  # a grey palette image stays grey
    g, c, p = (read_file(tmp_path / n) for n in ("g.png", "c.png", "p.png"))
    assert g.pixels.shape == (20, 30, 1) and np.array_equal(g.pixels[..., 0], grey) and g.value_range == (0, 255)
    assert c.pixels.shape == (20, 30, 3) and np.array_equal(c.pixels, rgb)
    assert p.pixels.shape == (20, 30, 1)


def test_nifti_volume_slices_and_2d_images(tmp_path):
    import nibabel as nib

    vol = np.random.default_rng(0).normal(size=(12, 10, 7)).astype(np.float32)  # (x, y, z)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")
    dec = read_file(tmp_path / "v.nii.gz")
    assert dec.source == "nifti" and dec.n_frames == 7
    assert np.allclose(dec.pixels[..., 0], np.rot90(vol[:, :, 3]))  # middle axial slice, anterior up
    assert np.allclose(read_file(tmp_path / "v.nii.gz", frame=0).pixels[..., 0], np.rot90(vol[:, :, 0]))
    sag = read_file(tmp_path / "v.nii.gz", frame=2, slice_axis=0)
    assert np.allclose(sag.pixels[..., 0], np.rot90(vol[2]))
    whole, facts = read_volume(tmp_path / "v.nii.gz")
    assert whole.shape == (7, 10, 12) and facts["spacing"] == (1.0, 1.0, 1.0)
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), tmp_path / "t.nii")
    with pytest.raises(DataError, match="4D series"):
        read_file(tmp_path / "t.nii")
    (tmp_path / "bad.nii.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="could not be read"):
        read_file(tmp_path / "bad.nii.gz")


def test_format_detection_by_content(tmp_path):
    import shutil

    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "IM0001")  # DICOM files often have no suffix
    assert image_format(tmp_path / "IM0001") == "dicom"
    assert read_file(tmp_path / "IM0001").hounsfield
    assert image_format(tmp_path / "x.nii.gz") == "nifti" and image_format(tmp_path / "x.png") == "image"


def test_decoded_repr_holds_no_pixels_or_header():
    d = read_file(get_testdata_file("CT_small.dcm"))
    assert isinstance(d, Decoded) and "CT" in repr(d) and len(repr(d)) < 200
    name = str(_ds("CT_small.dcm").PatientName)
    assert name and name not in repr(d)

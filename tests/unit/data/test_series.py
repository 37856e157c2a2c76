"""DICOM series, 4D NIfTI and the volume dispatcher (medclass/data/series.py).

Synthetic series are written with pydicom from a known volume ``C[z, y, x]`` (z to superior, y to posterior,
x to the patient's left: the canonical ``SPL`` layout), in any acquisition plane, with shuffled file names
and instance numbers; reading must give ``C`` back exactly. The real series are pydicom's test files (a
5-slice CT, a CT with a far-away slice, a folder of three MR series).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from medclass.data.readers import read_dicom, read_volume
from medclass.data.series import read_any_volume, read_nifti_volume, read_series
from medclass.errors import DataError

SECRET = "Doe^Jane"  # patient name in every synthetic header: must never come out
AXIAL, AXIAL_FLIPPED = (1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, -1, 0)
SAGITTAL, CORONAL = (0, 1, 0, 0, 0, -1), (1, 0, 0, 0, 0, -1)


def canonical(shape=(6, 5, 4), seed=0) -> np.ndarray:
    """A volume in HU whose every voxel differs, so any wrong order or flip shows."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(np.prod(shape)).reshape(shape) * 3 - 1000).astype(np.int16)


def _dataset(pixels: np.ndarray, *, modality: str, series_uid: str, instance: int, position, iop, pixel_spacing,
             thickness: float, monochrome1: bool = False, intercept: float = -1024.0) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.SeriesDescription = SECRET, "P-SECRET-42", "secret description"
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = modality, series_uid, 3, instance
    ds.StudyInstanceUID = "1.2.3.4"
    ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
    ds.ImageOrientationPatient = list(iop)
    ds.PixelSpacing = list(pixel_spacing)
    ds.SliceThickness = thickness
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 16, 16, 15, 0
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    if modality == "CT":
        ds.RescaleIntercept, ds.RescaleSlope = intercept, 1
        stored = pixels.astype(np.int32) - int(intercept)
    else:
        stored = pixels.astype(np.int32)
    ds.PixelData = stored.astype(np.uint16).tobytes()
    return ds


def write_slices(folder: Path, c: np.ndarray, spacing_xyz=(0.6, 0.5, 2.5), iop=AXIAL, *, modality="CT",
                 series_uid: str | None = None, prefix="IM", seed=1, monochrome1=False, intercept=-1024.0,
                 origin=(-100.0, -80.0, 40.0)) -> list[Path]:
    """Write ``c[z, y, x]`` as one file per slice acquired in the plane ``iop``; shuffled names and numbers."""
    r, col = np.array(iop[:3]), np.array(iop[3:])
    n = np.cross(r, col)
    ar, ac, an = (int(np.abs(v).argmax()) for v in (r, col, n))
    sr, sc = r[ar], col[ac]
    stack = np.transpose(c, (2 - an, 2 - ac, 2 - ar))  # (slice, row, column); c's axis for patient axis w is 2 - w
    if sc < 0:
        stack = stack[:, ::-1]
    if sr < 0:
        stack = stack[:, :, ::-1]
    size = {2 - a: c.shape[a] for a in range(3)}  # patient axis -> number of voxels
    uid = series_uid or generate_uid()
    rng = np.random.default_rng(seed)
    names = rng.permutation(len(stack))
    instances = rng.permutation(len(stack)) + 1
    paths = []
    for k in range(len(stack)):
        idx = np.zeros(3)
        idx[an] = k
        idx[ac] = 0 if sc > 0 else size[ac] - 1
        idx[ar] = 0 if sr > 0 else size[ar] - 1
        position = np.array(origin) + idx * np.array(spacing_xyz)
        ds = _dataset(np.ascontiguousarray(stack[k]), modality=modality, series_uid=uid, instance=int(instances[k]),
                      position=position, iop=iop, pixel_spacing=(spacing_xyz[ac], spacing_xyz[ar]),
                      thickness=spacing_xyz[an], monochrome1=monochrome1, intercept=intercept)
        path = folder / f"{prefix}{names[k]:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _no_secrets(text: str) -> None:
    for secret in (SECRET, "P-SECRET-42", "secret description", "1.2.3.4"):
        assert secret not in text


# --- synthetic series ------------------------------------------------------------------------------------


@pytest.mark.parametrize("iop", [AXIAL, AXIAL_FLIPPED, SAGITTAL, CORONAL], ids=["axial", "axial-flipped",
                                                                               "sagittal", "coronal"])
def test_any_acquisition_plane_reads_back_in_the_canonical_layout(tmp_path, iop):
    c = canonical()
    write_slices(tmp_path, c, iop=iop)
    vol, facts = read_series(tmp_path)
    assert vol.dtype == np.float32 and np.array_equal(vol, c.astype(np.float32))
    assert facts["spacing"] == pytest.approx((2.5, 0.5, 0.6)) and facts["orientation"] == "SPL"
    assert facts["hounsfield"] and facts["modality"] == "CT" and facts["source"] == "dicom-series"
    assert facts["n_slices"] == {AXIAL: 6, AXIAL_FLIPPED: 6, SAGITTAL: 4, CORONAL: 5}[iop]
    assert facts["shape"] == [6, 5, 4] and facts["tilt_deg"] == 0
    _no_secrets(repr(facts))


def test_without_reorientation_the_acquisition_order_is_kept(tmp_path):
    c = canonical()
    write_slices(tmp_path, c, iop=SAGITTAL)
    vol, facts = read_series(tmp_path, reorient=False)
    # sagittal slices sorted along the normal (to the patient's right), rows to inferior, columns to posterior
    assert facts["acquired_orientation"] == facts["orientation"] == "RIP"
    assert np.array_equal(vol, np.transpose(c, (2, 0, 1))[::-1, ::-1, :].astype(np.float32))
    assert facts["spacing"] == pytest.approx((0.6, 2.5, 0.5))


def test_every_slice_equals_read_dicom_of_its_file(tmp_path):
    c = canonical((4, 6, 6))
    paths = write_slices(tmp_path, c)
    vol, _ = read_series(tmp_path)
    by_z = sorted(paths, key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    for k, p in enumerate(by_z):
        assert np.array_equal(vol[k], read_dicom(p).pixels[..., 0])


def test_monochrome1_is_inverted_per_slice_like_read_dicom(tmp_path):
    c = (canonical((3, 4, 4)) + 1000).astype(np.int16)  # MR signal, no rescale
    paths = write_slices(tmp_path, c, modality="MR", monochrome1=True)
    vol, facts = read_series(tmp_path)
    assert not facts["hounsfield"] and facts["modality"] == "MR"
    assert np.array_equal(vol, (65535 - c.astype(np.float32)))  # bright means dense after inversion
    z0 = min(paths, key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    assert np.array_equal(vol[0], read_dicom(z0).pixels[..., 0])


def test_a_missing_slice_is_refused_with_the_files_around_it(tmp_path):
    paths = write_slices(tmp_path, canonical((8, 4, 4)))
    by_z = sorted(paths, key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    by_z[3].unlink()
    with pytest.raises(DataError, match=rf"folder '{tmp_path}': 1 slice\(s\) are missing. The spacing is 2.5 mm but "
                                        rf"'{by_z[2].name}' and '{by_z[4].name}' are 5 mm apart.*complete series"):
        read_series(tmp_path)


def test_duplicate_positions_are_refused(tmp_path):
    paths = write_slices(tmp_path, canonical((5, 4, 4)))
    shutil.copy(paths[0], tmp_path / "copy.dcm")
    with pytest.raises(DataError, match="1 pair\\(s\\) of slices share a position.*echo/time point"):
        read_series(tmp_path)


def test_non_uniform_spacing_is_refused_and_a_tolerance_can_accept_it(tmp_path):
    paths = write_slices(tmp_path, canonical((6, 4, 4)))
    p = max(paths, key=lambda q: float(pydicom.dcmread(q).ImagePositionPatient[2]))
    ds = pydicom.dcmread(p)
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 0.5  # last step 3.0 mm instead of 2.5
    ds.save_as(p)
    with pytest.raises(DataError, match=r"slice spacing is not uniform: steps from 2.5 to 3 mm \(median 2.5 mm, "
                                        r"tolerance 0.025 mm\).*spacing_tolerance"):
        read_series(tmp_path)
    vol, facts = read_series(tmp_path, spacing_tolerance=0.25)
    assert vol.shape == (6, 4, 4) and facts["spacing"][0] == pytest.approx(2.5)
    # within 1%: accepted as it is (scanners write positions rounded to 0.01 mm or so)
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) - 0.5 + 0.02
    ds.save_as(p)
    assert read_series(tmp_path)[0].shape == (6, 4, 4)


def test_mixed_orientations_are_refused(tmp_path):
    paths = write_slices(tmp_path, canonical((5, 4, 4)))
    ds = pydicom.dcmread(paths[2])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0.9, -0.43589]  # tilted by 26 degrees
    ds.save_as(paths[2])
    with pytest.raises(DataError, match=rf"'{paths[2].name}' is oblique \(closest to axial\); 1 of 5 differ from "
                                        r"the first\). A volume needs parallel slices"):
        read_series(tmp_path)


def test_two_series_are_refused_unless_one_is_chosen(tmp_path):
    a, b = canonical((4, 4, 4), seed=1), canonical((3, 5, 5), seed=2)
    write_slices(tmp_path, a, prefix="A", series_uid="1.2.826.0.1.1")
    write_slices(tmp_path, b, prefix="B", series_uid="1.2.826.0.1.2")
    with pytest.raises(DataError) as e:
        read_series(tmp_path)
    msg = str(e.value)
    assert "holds 2 DICOM series (#0: 4 files, 4x4 (A0000.dcm..A0003.dcm); #1: 3 files, 5x5" in msg
    assert "series=INDEX (0-1, in this order) or series=SeriesInstanceUID" in msg
    assert "1.2.826.0.1" not in msg  # UIDs identify a study: never printed
    assert np.array_equal(read_series(tmp_path, series=1)[0], b.astype(np.float32))
    assert np.array_equal(read_series(tmp_path, series="1.2.826.0.1.1")[0], a.astype(np.float32))
    with pytest.raises(DataError, match="series 2 does not exist. Use an index from 0 to 1"):
        read_series(tmp_path, series=2)
    with pytest.raises(DataError, match="no series with the SeriesInstanceUID given"):
        read_series(tmp_path, series="9.9")


def test_other_files_are_ignored_and_an_empty_folder_is_explained(tmp_path):
    write_slices(tmp_path, canonical((3, 4, 4)))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0" * 10)
    assert read_series(tmp_path)[0].shape == (3, 4, 4)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"folder '.*empty' holds no DICOM images \(1 other file\(s\), sub-folders "
                                        r"not searched\).*recursive=True"):
        read_series(empty)
    with pytest.raises(DataError, match="does not exist"):
        read_series(tmp_path / "nope")


def test_errors_and_logs_never_quote_the_header(tmp_path, caplog):
    paths = write_slices(tmp_path, canonical((5, 4, 4)))
    paths[1].unlink()
    with caplog.at_level(logging.DEBUG), pytest.raises(DataError) as e:
        read_series(tmp_path)
    _no_secrets(str(e.value) + caplog.text)


def test_gantry_tilt_is_measured_and_reported(tmp_path, caplog):
    paths = write_slices(tmp_path, canonical((5, 4, 4)))
    for p in paths:  # shift each slice posteriorly by tan(10 deg) x its height: a tilted gantry
        ds = pydicom.dcmread(p)
        z = float(ds.ImagePositionPatient[2]) - 40.0
        ds.ImagePositionPatient[1] = float(ds.ImagePositionPatient[1]) + z * np.tan(np.radians(10))
        ds.save_as(p)
    with caplog.at_level(logging.WARNING, logger="medclass.data.series"):
        _, facts = read_series(tmp_path)
    assert facts["tilt_deg"] == pytest.approx(10, abs=0.01) and "gantry tilt" in caplog.text


# --- real series (pydicom's test files) ------------------------------------------------------------------


def _dicomdir_tests() -> Path:
    path = get_testdata_file("DICOMDIR", download=False)
    if path is None:
        pytest.skip("Requires: pydicom's test files (dicomdirtests)")
    return Path(path).parent


def test_real_ct_series_is_sorted_by_position_and_in_hounsfield_units():
    folder = _dicomdir_tests() / "98892001" / "CT5N"
    vol, facts = read_series(folder)
    assert vol.shape == (5, 16, 16) and facts["n_slices"] == 5 and facts["hounsfield"]
    assert facts["spacing"] == pytest.approx((2.5, 0.488281, 0.488281))
    assert facts["orientation"] == "SPL" and facts["modality"] == "CT"
    # the files' z positions: 2062 8.76, 2392 6.26, 2693 3.76, 3023 1.26, 3353 -1.24 (inferior first)
    for k, name in enumerate(["3353", "3023", "2693", "2392", "2062"]):
        assert np.array_equal(vol[k], read_dicom(folder / name).pixels[..., 0])


def test_real_ct_with_a_far_slice_is_refused():
    # z = -99.5, 103.0, 104.3, 105.5: three contiguous slices and one 202 mm away
    with pytest.raises(DataError, match="161 slice\\(s\\) are missing. The spacing is 1.25 mm but '17106' and "
                                        "'17136' are 202.5 mm apart"):
        read_series(_dicomdir_tests() / "77654033" / "CT2")


def test_real_folder_of_three_mr_series():
    with pytest.raises(DataError, match="holds 3 DICOM series"):
        read_series(_dicomdir_tests() / "98892003" / "MR1")
    vol, facts = read_series(_dicomdir_tests() / "98892003" / "MR1", series=0)
    # one sagittal slice: in the SPL layout it is one voxel thick along W (left-right), its thickness the spacing
    assert vol.shape == (16, 16, 1) and facts["modality"] == "MR" and not facts["hounsfield"]
    assert facts["spacing"] == pytest.approx((1.367188, 1.367188, 10.0)) and facts["acquired_orientation"] == "RIP"



def test_a_folder_without_pixel_data_holds_no_images():
    folder = _dicomdir_tests() / "TINY_ALPHA" / "PT000000" / "ST000000" / "SE000000"
    with pytest.raises(DataError, match=r"holds no DICOM images \(50 other file\(s\)"):
        read_series(folder)


# --- NIfTI and the dispatcher ----------------------------------------------------------------------------


def _nifti(c: np.ndarray, path: Path, spacing_xyz=(0.6, 0.5, 2.5), extra: np.ndarray | None = None) -> Path:
    """``c[z, y, x]`` as a RAS NIfTI (columns to the left and rows posterior: LPS storage, as DICOM)."""
    data = np.transpose(c, (2, 1, 0))
    if extra is not None:
        data = np.stack([data, *[np.transpose(e, (2, 1, 0)) for e in extra]], axis=-1)
    sx, sy, sz = spacing_xyz
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data.astype(np.float32)), np.diag([-sx, -sy, sz, 1.0])), path)
    return path


def test_nifti_and_dicom_series_of_one_volume_agree(tmp_path):
    c = canonical()
    (tmp_path / "dcm").mkdir()
    write_slices(tmp_path / "dcm", c, iop=SAGITTAL)
    from_dicom, f1 = read_any_volume(tmp_path / "dcm")
    from_nifti, f2 = read_any_volume(_nifti(c, tmp_path / "c.nii.gz"))
    assert np.array_equal(from_dicom, from_nifti)
    assert f1["spacing"] == pytest.approx(f2["spacing"]) and f1["orientation"] == f2["orientation"] == "SPL"


def test_4d_nifti_needs_a_volume_index(tmp_path):
    vols = [canonical(seed=s) for s in range(3)]
    path = _nifti(vols[0], tmp_path / "series.nii.gz", extra=np.stack(vols[1:]))
    with pytest.raises(DataError, match=r"is 4D \(shape \(4, 5, 6, 3\)\): 3 volumes.*volume=K \(0 to 2\)"):
        read_nifti_volume(path)
    for k in (1, -1):
        vol, facts = read_nifti_volume(path, volume=k)
        assert np.array_equal(vol, vols[k].astype(np.float32)) and facts["n_volumes"] == 3
        assert facts["spacing"] == pytest.approx((2.5, 0.5, 0.6))
    # the 4D path lays a volume out exactly as read_volume does for the same volume saved as a 3D file
    assert np.array_equal(read_nifti_volume(path, volume=2)[0], read_volume(_nifti(vols[2], tmp_path / "v2.nii"))[0])
    with pytest.raises(DataError, match="has 3 volumes; volume=3 does not exist"):
        read_nifti_volume(path, volume=3)
    with pytest.raises(DataError, match="holds one 3D volume.*volume=2 does not exist"):
        read_nifti_volume(tmp_path / "v2.nii", volume=2)


def test_dispatch_by_kind_of_path(tmp_path):
    emri = get_testdata_file("emri_small.dcm", download=False)
    if emri is not None:  # an enhanced MR, 10 frames in one file
        vol, facts = read_any_volume(emri)
        assert vol.shape == (10, 64, 64) and facts["orientation"] is None and facts["n_slices"] == 10
        with pytest.raises(DataError, match="series applies to folders of DICOM slices only"):
            read_any_volume(emri, series=0)
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(DataError, match="is an ordinary image file, not a volume"):
        read_any_volume(tmp_path / "a.png")
    with pytest.raises(DataError, match="does not exist"):
        read_any_volume(tmp_path / "missing.nii")
    (tmp_path / "s").mkdir()
    write_slices(tmp_path / "s", canonical((3, 4, 4)))
    with pytest.raises(DataError, match="volume=1 applies to 4D NIfTI files only"):
        read_any_volume(tmp_path / "s", volume=1)
    assert read_any_volume(tmp_path / "s", reorient=False)[0].shape == (3, 4, 4)


def test_sub_folders_are_read_only_when_asked(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    write_slices(tmp_path / "a" / "b", canonical((4, 4, 4)))
    with pytest.raises(DataError, match="holds no DICOM images.*pass recursive=True"):
        read_series(tmp_path / "a")
    assert read_series(tmp_path / "a", recursive=True)[0].shape == (4, 4, 4)

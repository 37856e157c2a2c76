"""A real head CT (Debian's invesalius-examples, "ProMED CT 0051") through medclass's readers and CT windows.

The package ships an InVesalius project (``Cranium.inv3``, a gzipped tar) whose ``matrix.dat`` is the CT
volume in Hounsfield units (int16, 108 x 256 x 256, as its ``main.plist`` says). The test writes the middle
slice as a DICOM file the way scanners store CT (unsigned values with RescaleIntercept -1024) and as a NIfTI
volume, reads both back with medclass, and checks the physics: air about -1000 HU, brain soft tissue a few
tens of HU, and what the lung and brain windows make of them. CI installs the package (.ci/run).
"""

from __future__ import annotations

import plistlib
import tarfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medclass.config import PreprocessConfig
from medclass.data.readers import read_file
from medclass.transforms.preprocess import preprocess

INV3 = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")

pytestmark = pytest.mark.skipif(not INV3.is_file(), reason="Requires: Debian package invesalius-examples "
                                                           "(apt-get install invesalius-examples)")


def find_invesalius_ct() -> Path | None:
    return INV3 if INV3.is_file() else None


@pytest.fixture(scope="module")
def ct_volume() -> np.ndarray:
    with tarfile.open(INV3, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers()}
        meta = plistlib.loads(tar.extractfile(members["main.plist"]).read())
        raw = tar.extractfile(members["matrix.dat"]).read()
    m = meta["matrix"]
    assert meta["modality"] == "CT" and m["dtype"] == "int16"
    return np.frombuffer(raw, dtype=np.int16).reshape(m["shape"])


def _write_ct_dicom(hu: np.ndarray, path: Path) -> Path:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # a real CT header as the template
    stored = (hu.astype(np.int32) + 1024).astype(np.uint16)
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = stored.tobytes()
    for tag in ("WindowCenter", "WindowWidth"):
        if tag in ds:
            delattr(ds, tag)
    ds.save_as(path, enforce_file_format=True)
    return path


def _regions(hu: np.ndarray) -> tuple[float, float]:
    air = float(np.median(np.concatenate([hu[:16, :16].ravel(), hu[:16, -16:].ravel(), hu[-16:, :16].ravel()])))
    brain = float(np.median(hu[112:144, 112:144]))  # the centre of the head: brain parenchyma
    return air, brain


def test_real_ct_comes_out_in_hounsfield_units(ct_volume, tmp_path):
    hu = ct_volume[len(ct_volume) // 2]
    dec = read_file(_write_ct_dicom(hu, tmp_path / "slice.dcm"))
    assert dec.hounsfield and dec.modality == "CT"
    assert np.array_equal(dec.pixels[..., 0], hu.astype(np.float32))  # rescale intercept applied exactly
    air, brain = _regions(dec.pixels[..., 0])
    assert -1050 <= air <= -950, air  # measured: -998
    assert 0 <= brain <= 60, brain  # grey/white matter 20-40 HU; measured: 22


def test_lung_and_brain_windows_map_real_tissue_as_expected(ct_volume, tmp_path):
    hu = ct_volume[len(ct_volume) // 2]
    dec = read_file(_write_ct_dicom(hu, tmp_path / "slice.dcm"))
    lung = preprocess(dec, PreprocessConfig(preset="ct-lung"), size=256)[..., 0].astype(float) / 255
    brain = preprocess(dec, PreprocessConfig(preset="ct-brain"), size=256)[..., 0].astype(float) / 255
    air_l, tissue_l = _regions(lung)
    # lung window: centre -600, width 1500 (-1350..150 HU): air ~(-1000+1350)/1500 = 0.23, brain ~0.92
    assert abs(air_l - (-998 + 1350) / 1500) < 0.02 and abs(tissue_l - (22 + 1350) / 1500) < 0.03
    # brain window: centre 40, width 80 (0..80 HU): air black, brain in the lower middle, bone white
    air_b, tissue_b = _regions(brain)
    assert air_b == 0 and 0.15 < tissue_b < 0.5
    skull = hu > 700
    assert brain[skull].min() == 1.0 and lung[skull].min() == 1.0


def test_real_ct_volume_through_nifti(ct_volume, tmp_path):
    import nibabel as nib

    vol = np.transpose(ct_volume, (2, 1, 0)).astype(np.int16)  # (x, y, z), as NIfTI stores voxels
    nib.save(nib.Nifti1Image(vol, np.diag([0.957, 0.957, 1.5, 1])), tmp_path / "head.nii.gz")
    dec = read_file(tmp_path / "head.nii.gz")  # the middle axial slice
    assert dec.n_frames == 108 and dec.pixels.shape == (256, 256, 1)
    assert np.array_equal(np.sort(dec.pixels.ravel()), np.sort(ct_volume[54].ravel().astype(np.float32)))
    air, _ = _regions(dec.pixels[..., 0])
    assert -1050 <= air <= -950

"""A real head CT (Debian's ``invesalius-examples``, "ProMED CT 0051") through medclass's readers.

The package ships no DICOM files: it holds one InVesalius project, ``Cranium.inv3``, a gzipped tar whose
``matrix.dat`` is the CT volume in Hounsfield units (raw int16, 108 x 256 x 256 in the order its
``main.plist`` gives, voxels 0.957 x 0.957 x 1.5 mm) beside masks and surfaces. The test extracts the volume
into ``tmp_path``, writes the middle slice as a DICOM file the way scanners store CT (unsigned values with
``RescaleIntercept`` -1024, the project's own display window in the header) and the volume as NIfTI, reads
both back, and checks the physics: air outside the head about -1000 HU, brain a few tens of HU, and what the
lung and brain windows make of them. Windowing is written out here, as the preprocessing module does it,
so this file tests only the readers. CI installs the package (``apt-get install invesalius-examples``).
"""

from __future__ import annotations

import plistlib
import tarfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medclass.data.readers import read_file, read_volume

_CANDIDATES = ("/usr/share/doc/invesalius-examples/examples", "/usr/share/invesalius-examples",
               "/usr/share/invesalius/examples")


def find_invesalius_ct() -> Path | None:
    """The folder holding InVesalius's example CT project (``*.inv3``), or None when the package is absent."""
    for folder in map(Path, _CANDIDATES):
        if folder.is_dir() and any(folder.glob("*.inv3")):
            return folder
    return None


pytestmark = pytest.mark.skipif(find_invesalius_ct() is None, reason="Requires: Debian package "
                                "invesalius-examples (apt-get install invesalius-examples)")


@pytest.fixture(scope="module")
def ct(tmp_path_factory) -> tuple[np.ndarray, dict]:
    """The CT volume in HU, int16 ``(108, 256, 256)``, and the project's ``main.plist``."""
    archive = min(find_invesalius_ct().glob("*.inv3"))
    out = tmp_path_factory.mktemp("invesalius")
    with tarfile.open(archive, "r:gz") as tar:  # only the two files needed, written under their base names
        for member in tar.getmembers():
            if member.isfile() and Path(member.name).name in ("main.plist", "matrix.dat"):
                (out / Path(member.name).name).write_bytes(tar.extractfile(member).read())
    meta = plistlib.loads((out / "main.plist").read_bytes())
    m = meta["matrix"]
    assert meta["modality"] == "CT" and m["dtype"] == "int16" and tuple(meta["scalar_range"]) == (-1024, 3033)
    return np.fromfile(out / m["filename"], dtype="<i2").reshape(m["shape"]), meta


def _write_ct_dicom(hu: np.ndarray, meta: dict, path: Path) -> Path:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))  # a real CT header as the template
    stored = (hu.astype(np.int32) + 1024).astype(np.uint16)
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.WindowCenter, ds.WindowWidth = meta["window_level"], meta["window_width"]
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _air_and_tissue(image: np.ndarray) -> tuple[float, float]:
    """Median of the four 16-pixel corners (air around the head) and of the central 32 x 32 (brain)."""
    c = 16
    corners = np.concatenate([image[:c, :c].ravel(), image[:c, -c:].ravel(), image[-c:, :c].ravel(),
                              image[-c:, -c:].ravel()])
    h, w = image.shape
    centre = image[h // 2 - 16:h // 2 + 16, w // 2 - 16:w // 2 + 16]
    return float(np.median(corners)), float(np.median(centre))


def _window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    return np.clip((hu - (center - width / 2)) / width, 0, 1)


def test_real_ct_slice_comes_out_in_hounsfield_units(ct, tmp_path):
    volume, meta = ct
    hu = volume[len(volume) // 2]
    dec = read_file(_write_ct_dicom(hu, meta, tmp_path / "slice.dcm"))
    assert dec.hounsfield and dec.modality == "CT" and dec.pixels.shape == (256, 256, 1)
    assert np.array_equal(dec.pixels[..., 0], hu.astype(np.float32))  # the rescale intercept, applied exactly
    assert dec.window == (-18.0, 406.0)  # the project's own display window
    air, tissue = _air_and_tissue(dec.pixels[..., 0])
    assert -1050 <= air <= -950, air  # measured: -998
    assert -100 <= tissue <= 100 and 0 <= tissue <= 60, tissue  # brain 20-40 HU; measured: 22
    # inside the head, the most common value is soft tissue (brain), not bone or fat
    body = dec.pixels[..., 0][(dec.pixels[..., 0] > -200) & (dec.pixels[..., 0] < 200)]
    counts, edges = np.histogram(body, bins=np.arange(-200, 201, 10))
    assert -100 <= edges[counts.argmax()] <= 100


def test_lung_and_brain_windows_map_real_tissue_as_expected(ct, tmp_path):
    volume, meta = ct
    hu = read_file(_write_ct_dicom(volume[len(volume) // 2], meta, tmp_path / "slice.dcm")).pixels[..., 0]
    air_hu, tissue_hu = _air_and_tissue(hu)
    # lung window, centre -600, width 1500 (-1350..150 HU): air is dark grey, (-1000 + 1350) / 1500 = 0.23 (not
    # black: the window starts 350 HU below air), soft tissue near the top, (22 + 1350) / 1500 = 0.91
    air, tissue = _air_and_tissue(_window(hu, -600, 1500))
    assert air == pytest.approx((air_hu + 1350) / 1500) and 0.18 < air < 0.28
    assert tissue == pytest.approx((tissue_hu + 1350) / 1500) and 0.85 < tissue < 0.96
    # brain window, centre 40, width 80 (0..80 HU): air black, brain in the lower middle, the skull white
    air, tissue = _air_and_tissue(_window(hu, 40, 80))
    assert air == 0 and 0.15 < tissue < 0.6
    assert (_window(hu, 40, 80)[hu > 700] == 1).all() and (hu > 700).sum() > 500  # cortical bone is there


def test_real_ct_volume_through_nifti(ct, tmp_path):
    import nibabel as nib

    volume, meta = ct
    sx, sy, sz = meta["spacing"]
    # voxel axes (column, row, slice); columns run to the patient's left and rows posterior, as in DICOM,
    # hence the negative x and y in the affine (LPS storage): the slices must come back exactly as stored
    data = np.ascontiguousarray(np.transpose(volume, (2, 1, 0)))
    nib.save(nib.Nifti1Image(data, np.diag([-sx, -sy, sz, 1.0])), tmp_path / "head.nii")
    dec = read_file(tmp_path / "head.nii")  # the middle axial slice
    assert dec.n_frames == 108 and dec.pixels.shape == (256, 256, 1) and dec.bit_depth == 16
    assert np.array_equal(dec.pixels[..., 0], volume[54].astype(np.float32))
    vol, facts = read_volume(tmp_path / "head.nii")
    assert vol.shape == (108, 256, 256) and np.array_equal(vol, volume.astype(np.float32))
    assert facts["spacing"] == pytest.approx((sz, sy, sx))
    air, tissue = _air_and_tissue(vol[54])
    assert -1050 <= air <= -950 and 0 <= tissue <= 60

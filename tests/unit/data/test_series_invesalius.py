"""A real head CT (Debian's ``invesalius-examples``) written as a DICOM series and read back as a volume.

The volume (108 axial slices of 256 x 256, 0.957 x 0.957 x 1.5 mm, Hounsfield units) is taken out of the
InVesalius project as in ``test_invesalius_ct.py``, written one file per slice the way scanners store CT
(unsigned values, ``RescaleIntercept`` -1024, positions and orientation, file names and instance numbers
shuffled), and read with :func:`medclass.data.series.read_series`: the order, the spacing, the orientation
and the physics (air about -1000 HU, brain a few tens of HU, skull above 300 HU) must come back.
"""

from __future__ import annotations

import numpy as np
import pytest

from medclass.data.series import read_series
from tests.unit.data.test_invesalius_ct import ct, find_invesalius_ct  # noqa: F401  (ct is a fixture)
from tests.unit.data.test_series import AXIAL, write_slices

pytestmark = pytest.mark.skipif(find_invesalius_ct() is None, reason="Requires: Debian package "
                                "invesalius-examples (apt-get install invesalius-examples)")


def test_real_head_ct_as_a_dicom_series(ct, tmp_path):  # noqa: F811
    volume, meta = ct
    sx, sy, sz = meta["spacing"]
    write_slices(tmp_path, volume, spacing_xyz=(sx, sy, sz), iop=AXIAL, intercept=-1024.0)
    assert len(list(tmp_path.iterdir())) == 108

    vol, facts = read_series(tmp_path)
    assert vol.shape == (108, 256, 256) and np.array_equal(vol, volume.astype(np.float32))
    assert facts["spacing"] == pytest.approx((sz, sy, sx), abs=1e-3)
    assert facts["orientation"] == "SPL" and facts["hounsfield"] and facts["modality"] == "CT"

    mid = vol[54]
    corners = np.concatenate([mid[:16, :16].ravel(), mid[:16, -16:].ravel(), mid[-16:, :16].ravel(),
                              mid[-16:, -16:].ravel()])
    assert -1050 <= np.median(corners) <= -950  # air around the head (measured: -998)
    brain = np.median(mid[112:144, 112:144])
    assert 15 <= brain <= 45, brain  # grey/white matter 20-40 HU (measured: 22)
    skull = vol[(vol > 300)]
    assert skull.size > 50_000 and np.percentile(vol, 99.5) > 700  # cortical bone, several hundred to 2000+ HU


def test_real_head_ct_through_3d_preprocessing(ct, tmp_path):  # noqa: F811
    from medclass.config import PreprocessConfig
    from medclass.transforms.volume import preprocess_volume

    volume, meta = ct
    write_slices(tmp_path, volume, spacing_xyz=tuple(meta["spacing"]), iop=AXIAL)
    vol, facts = read_series(tmp_path)
    # 162 x 245 x 245 mm: the crop fits the 162 mm axis to 32 voxels (5.06 mm each) and crops the others
    x = preprocess_volume(vol, facts, PreprocessConfig(preset="ct-multi"), size=32)
    assert x.shape == (32, 32, 32, 3) and x.dtype == np.uint8
    lung, mediastinum, bone = (x[..., i].astype(int) for i in range(3))
    centre = (slice(14, 18), slice(14, 18), slice(14, 18))
    assert 220 <= np.median(lung[centre]) <= 245  # brain near the top of the lung window, (22 + 1350) / 1500
    assert 100 <= np.median(mediastinum[centre]) <= 140  # mid-grey in the soft-tissue window
    assert bone.max() == 255 and np.median(bone[centre]) < 100  # skull saturates the bone window, brain does not

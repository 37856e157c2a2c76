"""Image hashes: content hashes, perceptual hashes (against imagehash's algorithm), Hamming distances."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medclass.data import hashing
from medclass.data.hashing import content_hash, hamming, perceptual_hash
from medclass.errors import DataError
from tests.conftest import needs_real_data


def _naive_hamming(a, b):
    return np.array([[(int(x) ^ int(y)).bit_count() for y in b] for x in a])


def test_content_hash_same_pixels_from_png_and_dicom(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    from medclass.data.images import read_image

    pixels = np.random.default_rng(0).integers(0, 256, (20, 24), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(tmp_path / "b.dcm", enforce_file_format=True)

    from_png = read_image(tmp_path / "a.png")  # (H, W, 1)
    from_dicom = pydicom.dcmread(tmp_path / "b.dcm").pixel_array  # (H, W)
    assert content_hash(from_png) == content_hash(from_dicom) == content_hash(pixels)
    changed = pixels.copy()
    changed[3, 4] ^= 1
    assert content_hash(changed) != content_hash(pixels)


def test_content_hash_covers_dtype_and_shape_not_byte_order():
    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert content_hash(a) != content_hash(a.astype(np.uint8))  # same values, different decoded content
    assert content_hash(a) != content_hash(a.reshape(4, 3))
    assert content_hash(a) == content_hash(a.astype(">u2"))
    assert content_hash(a.T) == content_hash(np.ascontiguousarray(a.T))
    with pytest.raises(DataError, match="numeric"):
        content_hash(np.array(["a", "b"]))


def test_perceptual_hash_matches_imagehash_algorithm():
    """Bit order, DCT scaling and median follow imagehash.phash (scipy.fftpack.dct twice, > median of 64)."""
    import scipy.fftpack

    rng = np.random.default_rng(1)
    for _ in range(5):
        image = rng.random((40, 50)).astype(np.float32)
        small = np.asarray(Image.fromarray(image, "F").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
        low = scipy.fftpack.dct(scipy.fftpack.dct(small, axis=0), axis=1)[:8, :8]
        reference = int("".join("1" if v else "0" for v in (low > np.median(low)).ravel()), 2)
        assert perceptual_hash(image) == reference


@needs_real_data
def test_perceptual_hash_agrees_with_imagehash_on_real_images(breast):
    # int(str(imagehash.phash(Image.fromarray(x))), 16) for the first 12 BreastMNIST training images, from
    # imagehash 4.3.2. imagehash rounds to 8 bits between its resampling passes, we resample in float, so a
    # bit near the median can flip.
    expected = [0x8ca67589c2d6b1cb, 0x9cb6734944f0333b, 0xcfdc9011bab2c38e, 0xe9a716587c26a6ca, 0x9195d4b042d74bcf,
                0xc4b30c2e72f19ecc, 0xfde78298882868df, 0x9aa6a59958760dcd, 0xad9dc742a2264dd9, 0xf08a4f918f2e78b4,
                0xd796494134b4f2cb, 0xa3b85c9686c6c7c3]
    _, _, phashes = breast
    d = np.diag(hamming(expected, phashes[:12]))
    assert d.max() <= 2 and (d == 0).sum() >= 10


def test_perceptual_hash_invariances():
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    h = perceptual_hash(grey)
    assert 0 < h < 2**64
    assert perceptual_hash(grey.astype(np.float32) / 255) == h  # scale
    assert perceptual_hash(grey.astype(np.uint16) * 200 + 1000) == h  # 16-bit, shifted
    assert perceptual_hash(grey[..., None]) == h
    assert perceptual_hash(np.repeat(grey[..., None], 3, axis=-1)) == h  # grey as RGB
    assert perceptual_hash(np.full((30, 30), 7, np.uint8)) == perceptual_hash(np.zeros((5, 9))) == 0
    assert h.bit_count() == 32  # half the bits above the median: distances between hashes are even
    assert perceptual_hash(rng.integers(0, 256, (28, 28), dtype=np.uint8)) != h


@pytest.mark.parametrize("bad, match", [(np.zeros((4, 4, 4, 4)), "2D image"), (np.zeros((8, 8, 9)), "2D image"),
                                        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
                                        (np.zeros((0, 5)), "2D image")])
def test_perceptual_hash_rejects_bad_input(bad, match):
    with pytest.raises(DataError, match=match):
        perceptual_hash(bad)


@needs_real_data
def test_resaved_real_image_stays_within_default_threshold(breast, resave):
    images, _, phashes = breast
    for k in (0, 100, 200, 300, 400):
        copy = resave(images[k])
        assert copy.shape == (128, 128) and content_hash(copy) != content_hash(images[k])
        assert hamming([perceptual_hash(copy)], [phashes[k]])[0, 0] <= 4


# --- hamming ----------------------------------------------------------------------------------------

def test_hamming_matches_naive_loop():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2**64, size=37, dtype=np.uint64)
    b = np.concatenate([rng.integers(0, 2**64, size=21, dtype=np.uint64), np.array([0, 2**64 - 1], np.uint64)])
    d = hamming(a, b)
    assert d.shape == (37, 23)
    np.testing.assert_array_equal(d, _naive_hamming(a, b))
    assert hamming([0], [2**64 - 1])[0, 0] == 64
    assert hamming([5, 6], [5])[:, 0].tolist() == [0, 2]  # plain Python ints work too
    np.testing.assert_array_equal(hashing._popcount_lut(a[:, None] ^ b[None, :]), d)  # NumPy < 2 path


def test_hamming_rejects_values_that_are_not_hashes():
    with pytest.raises(DataError, match="64-bit"):
        hamming([-1], [0])
    with pytest.raises(DataError, match="64-bit"):
        hamming([2**64], [0])


# --- planted leaks in real images ---------------------------------------------------------------------

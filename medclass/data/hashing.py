"""Image hashes for the leakage checks: exact content hashes, perceptual hashes, and near-duplicate groups.

:func:`content_hash` is the SHA-256 of decoded pixels (dtype, shape and bytes); :func:`perceptual_hash` a 64-bit
DCT hash that changes little when an image is re-saved, resized or brightened; :func:`hamming` counts the bits
in which two perceptual hashes differ, and :func:`linked_groups` joins the images of different splits whose
hashes are close into connected groups. :mod:`medclass.data.leakage` turns those groups into the report.

Perceptual hash: the DCT hash of Zauner (2010), "Implementation and benchmarking of perceptual image
hash functions", as the ``imagehash`` library's ``phash`` computes it: grey, resize to 32x32, 2D DCT-II,
keep the top-left 8x8 low frequencies, one bit per coefficient above their median. It is written here
rather than taken from ``imagehash`` because it is ten lines over SciPy and Pillow, which medclass
already needs, and because ``imagehash`` only takes PIL images (8-bit, so a 16-bit DICOM would be
squashed first). Matching ``imagehash.phash``: the same DCT scaling (``scipy.fftpack.dct`` twice, i.e.
``dctn(norm='backward')``), the same median over all 64 coefficients (DC included), the same bit order
(``int(str(imagehash.phash(im)), 16) == perceptual_hash(a)`` for most 8-bit grey images). Differences:
the image is min-max scaled to [0, 1] first (so a uint8 and a float copy hash alike), colour becomes the
mean of the channels, and the resize runs in float (Pillow mode ``F``) where ``imagehash`` rounds to
8 bits between the two resampling passes; on the 780 BreastMNIST images the two agree exactly on 89%
and never differ by more than 2 bits.

Choosing ``near_duplicate_bits``: a pHash almost always has exactly 32 bits set (half the coefficients lie
above their median), so distances are even and 3 acts as 2, 5 as 4. Measured on the MedMNIST 28 px files:
a copy upscaled to 128 px, saved as JPEG (quality 75) and brightened stays within 2 bits; JPEG at quality
50, gamma 0.8 or noise (sd 5 grey levels) within 4 bits for 96-99% of images; a 1-pixel shift moves it ~10
bits (missed). On BreastMNIST (ultrasound) the pairs within 4 bits are real near-copies (pixel correlation
> 0.9); on PneumoniaMNIST (5,856 chest X-rays, which look alike at this scale) 248 pairs of different
images lie within 4 bits (1.5e-5 of all pairs), 16 within 2 and none at 0, so on large, uniform collections
expect false alarms at 4 and check the listed files before acting on them.

Comparing hashes: every pair of images in different splits is compared, in chunks with NumPy
broadcasting (XOR, then a popcount), on the distinct hash values of each split, so identical hashes
(e.g. hundreds of blank images) cost one comparison and make one reported group, not N^2 pairs.
Linked images form groups (connected components, :func:`linked_groups`), one leak per group. 50,000 random hashes
split 70/15/15 take about 1.5 s on two CPU cores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.fft import dctn
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import DataError

__all__ = [
    "HashNodes",
    "LinkedGroup",
    "close_pairs",
    "content_hash",
    "hamming",
    "hash_nodes",
    "linked_groups",
    "perceptual_hash",
]

_CHUNK_PAIRS = 1 << 20  # hash pairs compared at once (about 10 MB of temporaries)
_COMPRESS_EDGES = 1 << 22  # near-duplicate links kept before they are folded into groups
_BIT_WEIGHTS = np.left_shift(np.uint64(1), np.arange(63, -1, -1, dtype=np.uint64))  # first bit is the top bit
_POPCOUNT_TABLE = np.array([i.bit_count() for i in range(256)], dtype=np.uint8)


def content_hash(pixels: np.ndarray) -> str:
    """SHA-256 (hex) of a decoded pixel array: its dtype, shape and bytes.

    Identical decoded content gives an identical hash, whatever the file name or container: the same
    pixels read from a PNG and from a DICOM hash alike when both decode to the same array. A grey image
    hashes the same as ``(H, W)`` and ``(H, W, 1)``, and byte order does not matter.

    Args:
        pixels: the decoded image (any shape, numeric dtype).
    """
    a = np.asarray(pixels)
    if a.dtype.kind not in "biuf":
        raise DataError(f"content_hash: pixels must be a numeric array; got dtype {a.dtype}.")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def perceptual_hash(pixels: np.ndarray) -> int:
    """64-bit DCT perceptual hash (pHash) of a 2D image, as an int; see the module notes.

    Close images have hashes that differ in few bits (:func:`hamming`). The hash does not change when
    intensities are scaled or shifted (the image is min-max scaled first); a constant image hashes to 0.

    Args:
        pixels: ``(H, W)`` or ``(H, W, C)`` with C from 1 to 4, any numeric dtype (uint8, uint16, float).
    """
    a = np.asarray(pixels)
    if a.dtype.kind not in "biuf" or a.ndim not in (2, 3) or (a.ndim == 3 and not 1 <= a.shape[-1] <= 4) \
            or a.shape[0] < 1 or a.shape[1] < 1:
        raise DataError(f"perceptual_hash: expected a 2D image, (H, W) or (H, W, C) with 1-4 channels; got "
                        f"shape {a.shape} and dtype {a.dtype}. For a 3D volume, hash a representative slice "
                        f"or pass None for it (its exact duplicates are still caught by content_hash).")
    a = a.astype(np.float64)
    if a.ndim == 3:
        a = a.mean(axis=-1)
    if not np.isfinite(a).all():
        raise DataError("perceptual_hash: the image holds NaN or infinite values; fix the decoding first.")
    lo, hi = a.min(), a.max()
    if hi <= lo:
        return 0  # constant image: every DCT coefficient is 0, none is above the median
    a = ((a - lo) / (hi - lo)).astype(np.float32)
    small = np.asarray(Image.fromarray(a, mode="F").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    # norm="backward" is the scaling of imagehash's scipy.fftpack.dct; "ortho" shrinks row and column 0 by
    # 1/sqrt(2), which moves them against the median and flips more bits relative to imagehash.
    low = dctn(small, type=2, norm="backward")[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int(np.bitwise_or.reduce(_BIT_WEIGHTS[bits])) if bits.any() else 0


def _as_hashes(x: np.ndarray | Sequence[int] | int, name: str) -> np.ndarray:
    try:
        a = np.atleast_1d(np.asarray(x, dtype=np.uint64))
    except (OverflowError, ValueError, TypeError) as e:
        raise DataError(f"hamming: {name} must hold 64-bit hashes, ints from 0 to 2**64-1 ({e}).") from None
    if a.ndim != 1:
        raise DataError(f"hamming: {name} must be one-dimensional; got shape {a.shape}.")
    return a


def _popcount_lut(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64 through a byte table, for NumPy < 2 (no ``np.bitwise_count``)."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    return _POPCOUNT_TABLE[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)


def _popcount(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x, out=out)
    r = _popcount_lut(x)
    if out is None:
        return r
    out[...] = r
    return out


def hamming(a: np.ndarray | Sequence[int], b: np.ndarray | Sequence[int]) -> np.ndarray:
    """Pairwise Hamming distances between two sets of 64-bit hashes.

    Args:
        a: ``(n,)`` hashes (uint64 array or Python ints).
        b: ``(m,)`` hashes.

    Returns:
        ``(n, m)`` uint8 array; entry ``[i, j]`` counts the bits in which ``a[i]`` and ``b[j]`` differ.
    """
    a, b = _as_hashes(a, "a"), _as_hashes(b, "b")
    return _popcount(np.bitwise_xor(a[:, None], b[None, :]))


def close_pairs(a: np.ndarray, b: np.ndarray, max_bits: int):
    """Yield ``(i, j, d)`` arrays, chunk by chunk, for every pair with ``hamming(a[i], b[j]) <= max_bits``."""
    if len(a) == 0 or len(b) == 0:
        return
    rows = max(1, _CHUNK_PAIRS // len(b))
    x = np.empty((rows, len(b)), np.uint64)
    count = np.empty((rows, len(b)), np.uint8)
    close = np.empty((rows, len(b)), bool)
    for start in range(0, len(a), rows):
        k = min(rows, len(a) - start)
        np.bitwise_xor(a[start:start + k, None], b[None, :], out=x[:k])
        _popcount(x[:k], out=count[:k])
        np.less_equal(count[:k], max_bits, out=close[:k])
        i, j = np.nonzero(close[:k])
        if len(i):
            yield i + start, j, count[:k][i, j]


# --- near-duplicate groups ------------------------------------------------------------------------------

@dataclass(frozen=True)
class HashNodes:
    """Images grouped by (split, hash value): identical hashes within one split are one node, so hundreds of
    blank images cost one comparison and end up in one group."""

    members: list[np.ndarray]  # node -> indices of its images
    split_hashes: list[np.ndarray]  # per split (in rank order): the distinct hashes, one per node
    offsets: list[int]  # per split: the index of its first node

    @property
    def hashes(self) -> np.ndarray:
        """The hash of every node, in node order."""
        return np.concatenate(self.split_hashes) if self.split_hashes else np.zeros(0, np.uint64)


def hash_nodes(values: np.ndarray, images: np.ndarray, split_rank: np.ndarray, n_splits: int) -> HashNodes:
    """The :class:`HashNodes` of images ``images`` with 64-bit hashes ``values`` in splits ``split_rank``
    (0 .. ``n_splits - 1``), all three one entry per image."""
    members: list[np.ndarray] = []
    split_hashes: list[np.ndarray] = []
    offsets: list[int] = []
    for rank in range(n_splits):
        sel = split_rank == rank
        uniq, inverse = np.unique(values[sel], return_inverse=True)
        offsets.append(len(members))
        order = np.argsort(inverse, kind="stable")
        members += np.split(images[sel][order], np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1])
        split_hashes.append(uniq)
    return HashNodes(members, split_hashes, offsets)


@dataclass(frozen=True)
class LinkedGroup:
    """Nodes of different splits linked, directly or through others, by hashes at most ``max_bits`` apart."""

    nodes: np.ndarray  # node indices, the lowest (the root) first
    closest: int  # smallest distance of a link in the group
    farthest: int  # largest distance of a link in the group


LinkFilter = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (i, j, dist) -> links to drop


def linked_groups(nodes: HashNodes, max_bits: int, drop: LinkFilter | None = None) -> list[LinkedGroup]:
    """Connected groups of nodes in different splits whose hashes differ in at most ``max_bits`` bits.

    Args:
        nodes: from :func:`hash_nodes`.
        max_bits: the largest Hamming distance that links two nodes.
        drop: ``fn(i, j, dist)`` giving a boolean mask of candidate links to ignore (e.g. exact copies).
    """
    links = _Links(len(nodes.members))
    n_splits = len(nodes.split_hashes)
    for ra in range(n_splits):
        for rb in range(ra + 1, n_splits):
            for i, j, dist in close_pairs(nodes.split_hashes[ra], nodes.split_hashes[rb], max_bits):
                i, j = i + nodes.offsets[ra], j + nodes.offsets[rb]
                if drop is not None:
                    keep = ~drop(i, j, dist)
                    i, j, dist = i[keep], j[keep], dist[keep]
                links.add(i, j, dist)
    return links.groups()


class _Links:
    """Links between nodes, folded into groups whenever many have piled up, so memory stays bounded even when a
    whole dataset is one blur of near-identical images. After a fold each group is stored as links from its
    root to every other member, carrying the group's smallest and largest link distance."""

    def __init__(self, n_nodes: int):
        self.n_nodes = n_nodes
        self.src: list[np.ndarray] = []
        self.dst: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.pending = 0

    def add(self, i: np.ndarray, j: np.ndarray, dist: np.ndarray) -> None:
        self.src.append(i)
        self.dst.append(j)
        self.lo.append(dist)
        self.hi.append(dist)
        self.pending += len(i)
        if self.pending > _COMPRESS_EDGES:
            self.fold()

    def fold(self) -> None:
        if not self.src:
            return
        n = self.n_nodes
        s, d, a, b = (np.concatenate(x) for x in (self.src, self.dst, self.lo, self.hi))
        graph = coo_matrix((np.ones(len(s), np.int8), (s, d)), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        touched = np.unique(np.concatenate([s, d]))
        lo_of = np.full(n, 255, np.uint8)
        hi_of = np.zeros(n, np.uint8)
        np.minimum.at(lo_of, label[s], a)
        np.maximum.at(hi_of, label[s], b)
        root = np.full(n, n, np.int64)
        np.minimum.at(root, label[touched], touched)  # the lowest node of each group is its root
        keep = touched[root[label[touched]] != touched]
        self.src[:], self.dst[:] = [root[label[keep]]], [keep]
        self.lo[:], self.hi[:] = [lo_of[label[keep]]], [hi_of[label[keep]]]
        self.pending = len(keep)

    def groups(self) -> list[LinkedGroup]:
        self.fold()
        if not self.src or not len(self.src[0]):
            return []
        s, d, a, b = self.src[0], self.dst[0], self.lo[0], self.hi[0]
        order = np.argsort(s, kind="stable")
        roots, starts = np.unique(s[order], return_index=True)
        return [LinkedGroup(np.concatenate([[root], d[group]]), int(a[group[0]]), int(b[group[0]]))
                for root, group in zip(roots, np.split(order, starts[1:]))]

"""Leakage checks across splits: the same patient, the same image, or nearly the same image in two splits.

A model graded on a patient or an image it was trained on scores too well, and nothing downstream can
tell. So before training, :func:`check_leakage` looks for three things, and :func:`enforce` refuses
(by default), warns or stays silent according to ``data.leakage``:

- **patient**: one patient id in two splits. Splits are made per patient; this catches a split file
  or a manifest ``split`` column that was made per image.
- **duplicate**: the same decoded pixels in two splits (:func:`content_hash`, SHA-256 of dtype, shape
  and bytes), whatever the file names or containers.
- **near-duplicate**: two images in different splits whose perceptual hashes differ in at most
  ``near_duplicate_bits`` of 64 bits and which are not exact duplicates: a re-saved JPEG, a resized or
  re-windowed copy, a brightness change.

The manifest code hashes each image once, when it decodes it, and passes the hashes here; this module
never reads files. Copies inside one split are not leaks; they are counted in
``checked['within_split_duplicates']``.

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
Linked images form groups (connected components), one :class:`Leak` per group. 50,000 random hashes
split 70/15/15 take about 1.5 s on two CPU cores.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy.fft import dctn
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import ConfigError, DataError, did_you_mean

__all__ = ["POLICIES", "Leak", "LeakageError", "LeakageReport", "check_leakage", "content_hash", "enforce",
           "hamming", "perceptual_hash"]

logger = logging.getLogger(__name__)

POLICIES = ("refuse", "warn", "off")
_KINDS = ("patient", "duplicate", "near-duplicate")
_LIST_PER_KIND = 20  # offending items listed per kind in a summary
_LIST_PER_SPLIT = 5  # images named per split inside one item
_CHUNK_PAIRS = 1 << 20  # hash pairs compared at once (about 10 MB of temporaries)
_COMPRESS_EDGES = 1 << 22  # near-duplicate links kept before they are folded into groups
_BIT_WEIGHTS = np.left_shift(np.uint64(1), np.arange(63, -1, -1, dtype=np.uint64))  # first bit is the top bit
_POPCOUNT_TABLE = np.array([i.bit_count() for i in range(256)], dtype=np.uint8)


# --- hashes -----------------------------------------------------------------------------------------

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


def _close_pairs(a: np.ndarray, b: np.ndarray, max_bits: int):
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


# --- the report -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Leak:
    """One patient, or one group of identical or near-identical images, found in more than one split."""
    kind: str  # "patient", "duplicate" or "near-duplicate"
    splits: tuple[str, ...]  # the splits involved, in the order they first appear in the data
    detail: str  # one line for a person: the patient or images, with their splits, CSV rows and paths
    rows: tuple[int, ...]  # CSV rows of every image involved (header = row 1)
    distance: int | None = None  # near-duplicates: largest pHash distance linking the group; else None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "splits": list(self.splits), "detail": self.detail, "rows": list(self.rows),
                "distance": self.distance}


@dataclass(frozen=True)
class LeakageReport:
    """What :func:`check_leakage` checked and what it found."""

    leaks: tuple[Leak, ...]
    checked: dict = field(default_factory=dict)  # images, splits, patients, which checks ran, thresholds

    @property
    def ok(self) -> bool:
        """True when nothing is shared across splits (checks that could not run count as passed)."""
        return not self.leaks

    def by_kind(self, kind: str) -> tuple[Leak, ...]:
        return tuple(leak for leak in self.leaks if leak.kind == kind)

    def summary(self) -> str:
        """A human report: one line per check, then the offending items (at most 20 listed per kind)."""
        c = self.checked
        splits = ", ".join(f"{name} {count}" for name, count in c.get("splits", {}).items())
        verdict = "nothing shared across splits" if self.ok else f"{_plural(len(self.leaks), 'leak')} found"
        lines = [f"Leakage check of {c.get('images', 0)} images ({splits}): {verdict}."]
        n = {kind: len(self.by_kind(kind)) for kind in _KINDS}

        if not c.get("patient_ids"):
            lines.append("patients: not checked (no patient ids)")
        else:
            found = f"{_plural(n['patient'], 'patient')} in more than one split" if n["patient"] \
                else "none shared across splits"
            missing = c.get("images_without_patient_id", 0)
            extra = f"; {_plural(missing, 'image')} without a patient id not checked" if missing else ""
            lines.append(f"patients: {found} ({_plural(c.get('patients', 0), 'patient')}{extra})")

        if not c.get("content_hashes"):
            lines.append("exact duplicates: not checked (no content hashes)")
        else:
            found = f"{_plural(n['duplicate'], 'group')} of identical images across splits" if n["duplicate"] \
                else "none across splits"
            within = c.get("within_split_duplicates", 0)
            extra = f"; {_plural(within, 'image')} repeating another image of the same split (not a leak)" \
                if within else ""
            lines.append(f"exact duplicates: {found} (identical decoded pixels{extra})")

        if not c.get("perceptual_hashes"):
            lines.append("near-duplicates: not checked (no perceptual hashes)")
        else:
            found = f"{_plural(n['near-duplicate'], 'group')} across splits" if n["near-duplicate"] \
                else "none across splits"
            lines.append(f"near-duplicates: {found} (perceptual hashes within {c.get('near_duplicate_bits')} "
                         f"of 64 bits)")

        for kind in _KINDS:
            items = self.by_kind(kind)
            lines += [f"  {kind}: {leak.detail}" for leak in items[:_LIST_PER_KIND]]
            if len(items) > _LIST_PER_KIND:
                lines.append(f"  ... and {len(items) - _LIST_PER_KIND} more {kind} leaks (all in leakage.json)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-friendly form, for ``leakage.json`` in the run folder."""
        return {"ok": self.ok, "checked": dict(self.checked), "leaks": [leak.to_dict() for leak in self.leaks]}


class LeakageError(DataError):
    """Patients or images are shared across splits and ``data.leakage`` is ``refuse``."""

    def __init__(self, report: LeakageReport, message: str | None = None):
        self.report = report
        super().__init__(message if message is not None else report.summary())


_ADVICE = ("Training stopped: validation and test results would be too good, because the model would be graded "
           "on patients or images it was trained on. Fix the split so each patient and each image is in one "
           "split only (split by patient: data.patient_column; delete or merge the duplicate files), or set "
           "data.leakage=warn (e.g. --set data.leakage=warn) to proceed knowingly; the leaks are then recorded "
           "in leakage.json in the run folder.")


def enforce(report: LeakageReport, policy: str) -> None:
    """Act on a report as ``data.leakage`` says.

    Args:
        report: from :func:`check_leakage`.
        policy: ``"refuse"`` raises :class:`LeakageError` (the summary and what to do) when anything leaks;
            ``"warn"`` logs the summary as a warning; ``"off"`` does nothing.
    """
    if policy not in POLICIES:
        raise ConfigError(f"data.leakage must be one of {', '.join(POLICIES)}; got {policy!r}."
                          f"{did_you_mean(policy, POLICIES)}")
    if policy == "off" or report.ok:
        return
    if policy == "refuse":
        raise LeakageError(report, f"{report.summary()}\n{_ADVICE}")
    logger.warning("%s\nProceeding because data.leakage=warn.", report.summary())


# --- the check --------------------------------------------------------------------------------------

def check_leakage(
    split: Sequence[str],
    *,
    patient_ids: Sequence[str | None] | None = None,
    content_hashes: Sequence[str | None] | None = None,
    perceptual_hashes: Sequence[int | None] | None = None,
    paths: Sequence[str],
    rows: Sequence[int],
    near_duplicate_bits: int = 4,
) -> LeakageReport:
    """Find patients, identical images and near-identical images that appear in more than one split.

    Every argument holds one entry per image, in the same order. An entry of ``None`` (or an empty or NaN
    patient id) leaves that image out of the one check; a whole argument of ``None`` skips the check.

    Args:
        split: the split of each image, e.g. ``"train"``, ``"val"``, ``"test"`` (any names).
        patient_ids: patient (or study) id of each image.
        content_hashes: :func:`content_hash` of each decoded image.
        perceptual_hashes: :func:`perceptual_hash` of each decoded image.
        paths: file of each image, as named in the manifest (for messages).
        rows: CSV row of each image as the user sees it (header = row 1, first image = row 2).
        near_duplicate_bits: images in different splits whose perceptual hashes differ in at most this many
            bits, and whose pixels are not identical, are near-duplicates. 0 keeps identical hashes only.

    Returns:
        A :class:`LeakageReport`; pass it to :func:`enforce`.

    Example:
        >>> report = check_leakage(["train", "test"], patient_ids=["P1", "P1"], content_hashes=None,
        ...                        perceptual_hashes=None, paths=["a.png", "b.png"], rows=[2, 3])
        >>> report.leaks[0].detail
        "patient P1 in train (row 2 'a.png') and test (row 3 'b.png')"
    """
    split = [str(s) for s in split]
    n = len(split)
    for name, values in (("patient_ids", patient_ids), ("content_hashes", content_hashes),
                         ("perceptual_hashes", perceptual_hashes), ("paths", paths), ("rows", rows)):
        if values is not None and len(values) != n:
            raise DataError(f"check_leakage: {name} has {len(values)} entries but split has {n}; every argument "
                            f"needs one entry per image, in the same order.")
    if isinstance(near_duplicate_bits, bool) or not isinstance(near_duplicate_bits, (int, np.integer)) \
            or not 0 <= near_duplicate_bits <= 64:
        raise ConfigError(f"data.near_duplicate_bits must be an integer from 0 to 64 (bits of a 64-bit hash); "
                          f"got {near_duplicate_bits!r}.")
    where = _Where(split, [str(p) for p in paths], [int(r) for r in rows])
    checked: dict = {
        "images": n,
        "splits": {name: split.count(name) for name in where.order},
        "patient_ids": patient_ids is not None,
        "content_hashes": content_hashes is not None,
        "perceptual_hashes": perceptual_hashes is not None,
        "near_duplicate_bits": int(near_duplicate_bits),
    }
    leaks: list[Leak] = []
    if patient_ids is not None:
        leaks += _patient_leaks(patient_ids, where, checked)
    if content_hashes is not None:
        leaks += _duplicate_leaks(content_hashes, where, checked)
    if perceptual_hashes is not None:
        leaks += _near_duplicate_leaks(perceptual_hashes, content_hashes, int(near_duplicate_bits), where, checked)
    return LeakageReport(leaks=tuple(leaks), checked=checked)


class _Where:
    """Names images for messages: ``train (row 3 'a.png', row 8 'b.png') and test (row 41 'c.png')``."""
    def __init__(self, split: list[str], paths: list[str], rows: list[int]):
        self.split, self.paths, self.rows = split, paths, rows
        self.order = list(dict.fromkeys(split))
        self.rank = {name: k for k, name in enumerate(self.order)}

    def splits(self, idx: Sequence[int]) -> tuple[str, ...]:
        return tuple(sorted({self.split[i] for i in idx}, key=self.rank.__getitem__))

    def sorted(self, idx: Sequence[int]) -> list[int]:
        return sorted(idx, key=lambda i: (self.rank[self.split[i]], self.rows[i], i))

    def rows_of(self, idx: Sequence[int]) -> tuple[int, ...]:
        return tuple(self.rows[i] for i in self.sorted(idx))

    def __call__(self, idx: Sequence[int]) -> str:
        per_split: dict[str, list[int]] = defaultdict(list)
        for i in self.sorted(idx):
            per_split[self.split[i]].append(i)
        parts = []
        for name, members in per_split.items():
            named = [f"row {self.rows[i]} {self.paths[i]!r}" for i in members[:_LIST_PER_SPLIT]]
            if len(members) > _LIST_PER_SPLIT:
                named.append(f"and {len(members) - _LIST_PER_SPLIT} more")
            parts.append(f"{name} ({', '.join(named)})")
        return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _patient_leaks(patient_ids: Sequence[str | None], where: _Where, checked: dict) -> list[Leak]:
    groups: dict[str, list[int]] = defaultdict(list)
    missing = 0
    for i, pid in enumerate(patient_ids):
        if _missing(pid):
            missing += 1
        else:
            groups[str(pid).strip()].append(i)
    checked["patients"] = len(groups)
    checked["images_without_patient_id"] = missing
    return [Leak("patient", where.splits(idx), f"patient {pid} in {where(idx)}", where.rows_of(idx))
            for pid, idx in groups.items() if len(where.splits(idx)) > 1]


def _duplicate_leaks(content_hashes: Sequence[str | None], where: _Where, checked: dict) -> list[Leak]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(content_hashes):
        if h is not None:
            groups[h].append(i)
    leaks, within, examples = [], 0, []
    for idx in groups.values():
        if len(idx) < 2:
            continue
        splits = where.splits(idx)
        extra = len(idx) - len({where.split[i] for i in idx})  # copies beyond the first in each split
        within += extra
        if extra and len(examples) < _LIST_PER_KIND:
            examples.append(list(where.rows_of(idx)))
        if len(splits) > 1:
            leaks.append(Leak("duplicate", splits, f"identical pixels in {where(idx)}", where.rows_of(idx)))
    checked["within_split_duplicates"] = within
    checked["within_split_duplicate_rows"] = examples  # the first groups, as CSV rows
    checked["images_without_content_hash"] = len(content_hashes) - sum(len(g) for g in groups.values())
    return leaks


def _near_duplicate_leaks(perceptual_hashes: Sequence[int | None], content_hashes: Sequence[str | None] | None,
                          max_bits: int, where: _Where, checked: dict) -> list[Leak]:

    have = [i for i, h in enumerate(perceptual_hashes) if h is not None]
    checked["images_without_perceptual_hash"] = len(perceptual_hashes) - len(have)
    try:
        values = np.array([int(perceptual_hashes[i]) for i in have], dtype=np.uint64)
    except (OverflowError, ValueError, TypeError):
        bad = next(i for i in have if not _is_hash(perceptual_hashes[i]))
        raise DataError(f"check_leakage: perceptual hash {perceptual_hashes[bad]!r} of row {where.rows[bad]} "
                        f"({where.paths[bad]!r}) is not a 64-bit hash (an int from 0 to 2**64-1).") from None

    # Nodes: the distinct hash values of each split, each holding its images. Identical hashes within a split
    # (blank images, copies) are one node, so they cost one comparison and end up in one group.
    members: list[np.ndarray] = []  # node -> image indices
    node_hash: list[np.ndarray] = []
    offsets = {}
    have_split = np.array([where.rank[where.split[i]] for i in have], dtype=np.int64)
    have_idx = np.array(have, dtype=np.int64)
    for rank, _name in enumerate(where.order):
        sel = have_split == rank
        uniq, inverse = np.unique(values[sel], return_inverse=True)
        offsets[rank] = len(members)
        order = np.argsort(inverse, kind="stable")
        members += np.split(have_idx[sel][order], np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1])
        node_hash.append(uniq)
    hashes = np.concatenate(node_hash) if node_hash else np.zeros(0, np.uint64)
    n_nodes = len(members)

    # Links between nodes of different splits, folded into groups whenever many have piled up, so memory
    # stays bounded even when a whole dataset is one blur of near-identical images.
    src, dst, lo, hi = [], [], [], []
    pending = 0

    def fold() -> None:
        nonlocal pending
        if not src:
            return
        s, d, a, b = (np.concatenate(x) for x in (src, dst, lo, hi))
        graph = coo_matrix((np.ones(len(s), np.int8), (s, d)), shape=(n_nodes, n_nodes))
        _, label = connected_components(graph, directed=False)
        touched = np.unique(np.concatenate([s, d]))
        lo_of = np.full(n_nodes, 255, np.uint8)
        hi_of = np.zeros(n_nodes, np.uint8)
        np.minimum.at(lo_of, label[s], a)
        np.maximum.at(hi_of, label[s], b)
        root = np.full(n_nodes, n_nodes, np.int64)
        np.minimum.at(root, label[touched], touched)  # the lowest node of each group is its root
        keep = touched[root[label[touched]] != touched]
        r = root[label[keep]]
        src[:], dst[:], lo[:], hi[:] = [r], [keep], [lo_of[label[keep]]], [hi_of[label[keep]]]
        pending = len(keep)

    for ra in range(len(where.order)):
        for rb in range(ra + 1, len(where.order)):
            for i, j, dist in _close_pairs(node_hash[ra], node_hash[rb], max_bits):
                i, j = i + offsets[ra], j + offsets[rb]
                if content_hashes is not None:  # drop links made only of exact duplicates (reported above)
                    same = dist == 0
                    if same.any():
                        only_copies = np.array([_all_identical(members[a], members[b], content_hashes)
                                                for a, b in zip(i[same], j[same])])
                        drop = np.zeros(len(i), bool)
                        drop[np.flatnonzero(same)[only_copies]] = True
                        i, j, dist = i[~drop], j[~drop], dist[~drop]
                src.append(i)
                dst.append(j)
                lo.append(dist)
                hi.append(dist)
                pending += len(i)
                if pending > _COMPRESS_EDGES:
                    fold()
    fold()
    if not src or not len(src[0]):
        return []

    s, d, a, b = src[0], dst[0], lo[0], hi[0]
    order = np.argsort(s, kind="stable")
    roots, starts = np.unique(s[order], return_index=True)
    leaks = []
    for root, group in zip(roots, np.split(order, starts[1:])):
        nodes = np.concatenate([[root], d[group]])
        idx = np.concatenate([members[k] for k in nodes]).tolist()
        dmin, dmax = int(a[group[0]]), int(b[group[0]])
        if len(idx) == 2:
            what = f"near-identical images (pHash distance {dmax})"
        else:
            span = f"{dmin}-{dmax}" if dmin != dmax else f"{dmax}"
            what = f"{len(idx)} near-identical images (pHash distance {span} between linked images)"
        if (hashes[nodes] == 0).any():
            what += ", blank or constant images among them (perceptual hash 0)"
        leaks.append(Leak("near-duplicate", where.splits(idx), f"{what} in {where(idx)}", where.rows_of(idx),
                          distance=dmax))
    leaks.sort(key=lambda leak: (leak.rows[0], leak.rows))
    return leaks


def _is_hash(value: object) -> bool:
    try:
        return 0 <= int(value) < 2**64  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def _all_identical(a: np.ndarray, b: np.ndarray, content_hashes: Sequence[str | None]) -> bool:
    """True when every image of both nodes has the same (known) content hash: exact copies, not near ones."""
    seen = {content_hashes[k] for k in np.concatenate([a, b])}
    return len(seen) == 1 and None not in seen


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"

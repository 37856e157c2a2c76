"""Leakage checks: planted leaks in real images, reports and the refuse/warn/off policy."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from medclass.data import hashing
from medclass.data.leakage import (
    Leak,
    LeakageError,
    LeakageReport,
    check_leakage,
    content_hash,
    enforce,
    hamming,
    perceptual_hash,
)
from medclass.errors import ConfigError, DataError
from tests.conftest import needs_real_data


def _distinct(images, phashes, min_bits: int = 6) -> list[int]:
    """Indices of images whose pHashes are all at least ``min_bits`` apart (BreastMNIST has real near-copies)."""
    keep: list[int] = []
    for i, h in enumerate(phashes):
        if not keep or hamming([h], [phashes[k] for k in keep]).min() >= min_bits:
            keep.append(i)
    return keep


@needs_real_data
def test_clean_split_of_distinct_real_images_passes(breast):
    images, _, phashes = breast
    keep = _distinct(images, phashes)
    assert len(keep) > 400
    rng = np.random.default_rng(4)
    split = rng.choice(["train", "val", "test"], size=len(keep), p=[0.7, 0.15, 0.15]).tolist()
    report = check_leakage(split, patient_ids=[f"P{i}" for i in keep],
                           content_hashes=[content_hash(images[i]) for i in keep],
                           perceptual_hashes=[phashes[i] for i in keep], paths=[f"img/{i}.png" for i in keep],
                           rows=list(range(2, len(keep) + 2)))
    assert report.ok and report.leaks == ()
    assert report.checked["patients"] == len(keep) and report.checked["within_split_duplicates"] == 0
    assert "patients: none shared across splits" in report.summary()


@needs_real_data
def test_planted_leaks_are_all_caught(breast, resave):
    images, _, phashes = breast
    *keep, spare = _distinct(images, phashes)[:301]
    rng = np.random.default_rng(5)
    split = rng.choice(["train", "val", "test"], size=len(keep), p=[0.7, 0.15, 0.15]).tolist()
    split[:3] = ["train", "train", "train"]
    pixels = [images[i] for i in keep]
    paths = [f"img/{i}.png" for i in keep]
    patients = [f"P{i:03d}" for i in range(len(keep))]

    # 1. patient P001 also in test; 2. image 0 copied into test under another name; 3. image 2 re-saved into
    # val; 4. image 1 copied within train (a note, not a leak).
    plants = [("test", "P001", images[spare], "img/other.png"),
              ("test", "P900", pixels[0], "copies/same-pixels.dcm"),
              ("val", "P901", resave(pixels[2]), "resaved/2.jpg"),
              ("train", "P902", pixels[1], "img/again.png")]
    for s, pid, px, path in plants:
        split.append(s)
        patients.append(pid)
        pixels.append(px)
        paths.append(path)
    rows = list(range(2, len(split) + 2))
    report = check_leakage(split, patient_ids=patients, content_hashes=[content_hash(p) for p in pixels],
                           perceptual_hashes=[perceptual_hash(p) for p in pixels], paths=paths, rows=rows)

    assert not report.ok
    assert [leak.kind for leak in report.leaks] == ["patient", "duplicate", "near-duplicate"]
    patient, duplicate, near = report.leaks
    n = len(keep)
    assert patient.splits == ("train", "test") and patient.rows == (3, rows[n])
    assert patient.detail == f"patient P001 in train (row 3 'img/{keep[1]}.png') and test (row {rows[n]} 'img/other.png')"
    assert duplicate.splits == ("train", "test") and duplicate.rows == (2, rows[n + 1])
    assert "copies/same-pixels.dcm" in duplicate.detail and duplicate.distance is None
    assert near.splits == ("train", "val") and set(near.rows) == {4, rows[n + 2]}
    assert near.distance is not None and near.distance <= 4 and "resaved/2.jpg" in near.detail
    assert report.checked["within_split_duplicates"] == 1
    assert report.checked["within_split_duplicate_rows"] == [[3, rows[n + 3]]]


def test_blank_images_make_one_group_not_all_pairs():
    rng = np.random.default_rng(6)
    blanks = [np.full((16, 16), v, np.uint8) for v in range(40)]  # 40 different constant images, pHash 0
    textured = [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(10)]
    pixels = blanks + textured
    split = ["train"] * 25 + ["test"] * 15 + ["train"] * 5 + ["test"] * 5
    report = check_leakage(split, patient_ids=None, content_hashes=[content_hash(p) for p in pixels],
                           perceptual_hashes=[perceptual_hash(p) for p in pixels],
                           paths=[f"{i}.png" for i in range(50)], rows=list(range(2, 52)))
    assert len(report.leaks) == 1
    (leak,) = report.leaks
    assert leak.kind == "near-duplicate" and leak.distance == 0 and leak.rows == tuple(range(2, 42))
    assert "40 near-identical images" in leak.detail and "blank or constant" in leak.detail
    assert "and 20 more" in leak.detail and "and 10 more" in leak.detail  # five named per split


def test_exact_copies_are_duplicates_not_near_duplicates():
    image = np.random.default_rng(7).integers(0, 256, (20, 20), dtype=np.uint8)
    blank = np.zeros((20, 20), np.uint8)
    pixels = [image, image.copy(), image.copy(), blank, blank.copy()]
    split = ["train", "test", "val", "train", "test"]
    report = check_leakage(split, content_hashes=[content_hash(p) for p in pixels],
                           perceptual_hashes=[perceptual_hash(p) for p in pixels], paths=list("abcde"),
                           rows=[2, 3, 4, 5, 6])
    assert [(leak.kind, leak.rows) for leak in report.leaks] == [("duplicate", (2, 3, 4)), ("duplicate", (5, 6))]
    assert report.leaks[0].splits == ("train", "test", "val")
    assert report.leaks[0].detail == "identical pixels in train (row 2 'a'), test (row 3 'b') and val (row 4 'c')"
    # without content hashes, the copies can only show up as identical perceptual hashes
    report = check_leakage(split, perceptual_hashes=[perceptual_hash(p) for p in pixels], paths=list("abcde"),
                           rows=[2, 3, 4, 5, 6])
    assert [(leak.kind, leak.distance) for leak in report.leaks] == [("near-duplicate", 0)] * 2


def test_near_duplicates_follow_the_threshold_and_split_boundaries():
    h = [0b1111 << 40, (0b1111 << 40) ^ 0b11, (0b1111 << 40) ^ (0b1111 << 10), 2**63 + 12345]
    split = ["train", "test", "val", "test"]
    args = {"paths": list("abcd"), "rows": [2, 3, 4, 5]}
    assert [leak.rows for leak in check_leakage(split, perceptual_hashes=h, near_duplicate_bits=2, **args).leaks] \
        == [(2, 3)]
    (group,) = check_leakage(split, perceptual_hashes=h, near_duplicate_bits=4, **args).leaks
    assert group.rows == (2, 3, 4) and group.distance == 4 and "distance 2-4" in group.detail
    assert check_leakage(split, perceptual_hashes=h, near_duplicate_bits=1, **args).ok
    assert check_leakage(["train"] * 4, perceptual_hashes=h, near_duplicate_bits=64, **args).ok  # one split


def test_folding_links_into_groups_gives_the_same_report(monkeypatch):
    rng = np.random.default_rng(8)
    base = rng.integers(0, 2**64, size=30, dtype=np.uint64)
    flips = np.left_shift(np.uint64(1), rng.integers(0, 64, size=300).astype(np.uint64))
    hashes = [int(x) for x in np.repeat(base, 10) ^ flips]  # 30 clusters of 10 close hashes
    split = rng.choice(["train", "val", "test"], size=300).tolist()
    args = {"perceptual_hashes": hashes, "paths": [str(i) for i in range(300)], "rows": list(range(2, 302))}
    unfolded = check_leakage(split, **args)
    monkeypatch.setattr(hashing, "_COMPRESS_EDGES", 3)
    monkeypatch.setattr(hashing, "_CHUNK_PAIRS", 7)
    folded = check_leakage(split, **args)
    assert folded == unfolded and 20 <= len(folded.leaks) <= 30


def test_twenty_thousand_random_hashes_take_seconds_not_minutes():
    rng = np.random.default_rng(9)
    n = 20_000
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64).tolist()
    split = rng.choice(["train", "val", "test"], size=n, p=[0.7, 0.15, 0.15]).tolist()
    start = time.perf_counter()
    report = check_leakage(split, patient_ids=[f"P{i // 2}" for i in range(n)], content_hashes=[str(i) for i in range(n)],
                           perceptual_hashes=hashes, paths=[f"{i}.png" for i in range(n)], rows=list(range(2, n + 2)))
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"{elapsed:.1f} s"  # about 0.3 s on two cores
    assert {leak.kind for leak in report.leaks} == {"patient"}


@needs_real_data
def test_official_breastmnist_split_holds_a_duplicate(breast):
    """A real fact, not a planted one: one ultrasound image is both train_images[115] and test_images[76]."""
    images, split, _ = breast
    report = check_leakage(split, content_hashes=[content_hash(x) for x in images], perceptual_hashes=None,
                           paths=[f"{s}[{i}]" for i, s in enumerate(split)], rows=list(range(len(split))))
    assert [(leak.kind, leak.splits) for leak in report.leaks] == [("duplicate", ("train", "test"))]
    assert report.leaks[0].rows == (115, 546 + 78 + 76)


# --- missing values and bad input ---------------------------------------------------------------------

def test_missing_entries_are_skipped_and_counted():
    split = ["train", "test", "test", "train"]
    report = check_leakage(split, patient_ids=["P1", None, float("nan"), " "], content_hashes=["x", None, "y", "y"],
                           perceptual_hashes=[1, None, 2**64 - 1, None], paths=list("abcd"), rows=[2, 3, 4, 5])
    c = report.checked
    assert c["patients"] == 1 and c["images_without_patient_id"] == 3
    assert c["images_without_content_hash"] == 1 and c["images_without_perceptual_hash"] == 2
    assert [leak.kind for leak in report.leaks] == ["duplicate"]


def test_bad_arguments_say_what_and_where():
    with pytest.raises(DataError, match="paths has 1 entries but split has 2"):
        check_leakage(["train", "test"], paths=["a"], rows=[2, 3])
    with pytest.raises(ConfigError, match="near_duplicate_bits.*got 65"):
        check_leakage(["train"], paths=["a"], rows=[2], near_duplicate_bits=65)
    with pytest.raises(DataError, match=r"-3 of row 3 \('b.png'\)"):
        check_leakage(["train", "test"], perceptual_hashes=[1, -3], paths=["a.png", "b.png"], rows=[2, 3])


# --- report and policy --------------------------------------------------------------------------------

def _leaky_report() -> LeakageReport:
    split = ["train", "train", "test", "val"]
    return check_leakage(split, patient_ids=["P017", "P017", "P017", "P2"], content_hashes=["a", "b", "c", "d"],
                         perceptual_hashes=None, paths=["x/1.png", "x/2.png", "x/3.png", "x/4.png"], rows=[3, 8, 41, 42])


def test_summary_and_json():
    report = _leaky_report()
    lines = report.summary().splitlines()
    assert lines[0] == "Leakage check of 4 images (train 2, test 1, val 1): 1 leak found."
    assert lines[1] == "patients: 1 patient in more than one split (2 patients)"
    assert lines[2].startswith("exact duplicates: none across splits")
    assert lines[3] == "near-duplicates: not checked (no perceptual hashes)"
    assert lines[4] == "  patient: patient P017 in train (row 3 'x/1.png', row 8 'x/2.png') and test (row 41 'x/3.png')"
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ok"] is False and d["leaks"][0]["rows"] == [3, 8, 41] and d["checked"]["images"] == 4


def test_summary_caps_the_listing():
    n = 50
    split = ["train", "test"] * n
    report = check_leakage(split, patient_ids=[f"P{i // 2}" for i in range(2 * n)], paths=[f"{i}" for i in range(2 * n)],
                           rows=list(range(2, 2 * n + 2)))
    assert len(report.leaks) == n
    text = report.summary()
    assert text.count("  patient: ") == 20 and "... and 30 more patient leaks" in text


def test_enforce_refuse_names_patient_files_and_rows():
    report = _leaky_report()
    with pytest.raises(LeakageError, match="P017") as info:
        enforce(report, "refuse")
    message = str(info.value)
    assert "row 41 'x/3.png'" in message and "row 3 'x/1.png'" in message and "data.leakage=warn" in message
    assert info.value.report is report and isinstance(info.value, DataError) and isinstance(info.value, ValueError)
    enforce(LeakageReport(leaks=(), checked={}), "refuse")  # nothing found: nothing raised


def test_enforce_warn_logs_and_off_is_silent(caplog):
    report = _leaky_report()
    with caplog.at_level(logging.WARNING, logger="medclass.data.leakage"):
        enforce(report, "warn")
    assert len(caplog.records) == 1 and "P017" in caplog.text and "row 41" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="medclass.data.leakage"):
        enforce(report, "off")
    assert caplog.records == []


def test_enforce_unknown_policy():
    with pytest.raises(ConfigError, match="data.leakage must be one of refuse, warn, off; got 'refuze'. Did you mean"):
        enforce(_leaky_report(), "refuze")


def test_leak_is_frozen():
    leak = Leak("patient", ("train", "test"), "patient P1", (2, 3))
    with pytest.raises(AttributeError):
        leak.kind = "duplicate"  # type: ignore[misc]

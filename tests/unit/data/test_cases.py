"""Cases of several images (``case_id``): grouping, view order, splits per case, and the one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medclass.config import DataConfig
from medclass.data.manifest_dataset import load_manifest_dataset
from medclass.errors import ConfigError, DataError


def write_cases(root: Path, cases: int = 24, views=("frontal", "lateral"), *, seed: int = 0, extra=None,
                drop=None, cols=("path", "label", "case_id", "view", "patient_id")) -> Path:
    """``cases`` two-view studies of 16 px PNGs; the label is the case's; each patient has two cases."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(cases):
        label = ("normal", "abnormal")[c % 2]
        for v in views:
            rel = f"c{c:03d}_{v}.png"
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / rel)
            row = {"path": rel, "label": label, "case_id": f"c{c:03d}", "view": v, "patient_id": f"p{c // 2:03d}",
                   "site": "A" if c < cases // 2 else "B", "exposure": str(rng.integers(0, 9))}
            rows.append(row)
    for fn in extra or ():
        fn(rows)
    if drop:
        rows = [r for r in rows if not drop(r)]
    path = root / "cases.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*cols, "site", "exposure"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def load(path: Path, **opts):
    return load_manifest_dataset(DataConfig(manifest=str(path), size=16, cache=False, leakage="off", **opts))


def test_views_become_one_case_in_view_order(tmp_path):
    path = write_cases(tmp_path)
    ds = load(path, views=("lateral", "frontal"))
    assert ds.views == ("lateral", "frontal") and ds.unit == "case"
    n = sum(len(s) for s in ds.splits.values())
    assert n == 24
    train = ds.split("train")
    assert train.images.shape[1:] == (2, 16, 16, 1)
    # the first view of each case is its lateral image, pixel for pixel
    first = train.meta["path"][0].split(";")
    assert first[0].endswith("_lateral.png") and first[1].endswith("_frontal.png")
    assert np.array_equal(train.images[0, 0, ..., 0], np.asarray(Image.open(tmp_path / first[0])))
    assert set(train.meta) >= {"case_id", "patient_id", "site"} and "exposure" not in train.meta  # per-image column
    facts = ds.describe()
    assert facts["unit"] == "case" and facts["cases"]["images"] == 48 and facts["cases"]["view_kind"] == "views"
    assert ds.pipeline.views == ("lateral", "frontal")


def test_views_default_to_sorted_names_and_patients_stay_in_one_split(tmp_path):
    ds = load(write_cases(tmp_path, cases=40))
    assert ds.views == ("frontal", "lateral")
    where = {}
    for name, s in ds.splits.items():
        for p in s.meta["patient_id"]:
            assert where.setdefault(p, name) == name
    assert sum(len(s) for s in ds.splits.values()) == 40


def test_cases_without_patients_are_split_by_case(tmp_path):
    ds = load(write_cases(tmp_path, cases=40, cols=("path", "label", "case_id", "view")))
    seen = [c for s in ds.splits.values() for c in s.meta["case_id"]]
    assert len(seen) == len(set(seen)) == 40


def test_slices_without_a_view_column_are_stacked_in_path_order(tmp_path):
    ds = load(write_cases(tmp_path, views=("s2", "s10", "s1"), cols=("path", "label", "case_id")))
    assert ds.views == ("slice 1", "slice 2", "slice 3") and ds.describe()["cases"]["view_kind"] == "slices"
    paths = ds.split("train").meta["path"][0].split(";")
    assert [p.split("_")[1] for p in paths] == ["s1.png", "s2.png", "s10.png"]  # natural order


@pytest.mark.parametrize("mutate, message", [
    (lambda rows: rows[1].update(label="abnormal"), "have different labels"),
    (lambda rows: rows[1].update(view="frontal"), "appear more than once"),
    (lambda rows: rows[1].update(patient_id="p999"), "belong to different patients"),
])
def test_inconsistent_cases_are_one_line_errors(tmp_path, mutate, message):
    with pytest.raises(DataError, match=message) as e:
        load(write_cases(tmp_path, extra=[mutate]))
    assert "case 'c000' (rows 2, 3)" in str(e.value)


def test_a_missing_view_names_the_case(tmp_path):
    path = write_cases(tmp_path, drop=lambda r: r["case_id"] == "c005" and r["view"] == "lateral")
    with pytest.raises(DataError, match=r"case 'c005' \(row 12\): lacks the view\(s\) 'lateral'"):
        load(path)


def test_a_view_not_in_the_list_is_a_bad_row(tmp_path):
    path = write_cases(tmp_path, extra=[lambda rows: rows[3].update(view="oblique")])
    with pytest.raises(DataError, match=r"row 5 .*view 'oblique' is not one of the configured views"):
        load(path, views=("frontal", "lateral"))
    with pytest.raises(DataError, match=r"'oblique' is in 1 of 24 cases: set data.views to the views every case"):
        load(path, views=())  # the views read from the column hold oblique, which 23 cases lack
    # ... and with the list given, skipping the bad row leaves case c001 without its lateral view
    with pytest.raises(DataError, match=r"case 'c001' \(row 4\): lacks the view\(s\) 'lateral'"):
        load(path, views=("frontal", "lateral"), skip_bad=True)


def test_slices_of_different_counts_are_refused(tmp_path):
    path = write_cases(tmp_path, views=("s1", "s2", "s3"), cols=("path", "label", "case_id"),
                       drop=lambda r: r["path"] == "c004_s3.png")
    with pytest.raises(DataError, match="different numbers of images .* same length"):
        load(path)


def test_a_case_split_across_the_split_column_is_refused(tmp_path):
    def set_split(rows):
        for i, r in enumerate(rows):
            r["split"] = ("train", "val", "test")[(i // 2) % 3]
        rows[0]["split"] = "test"

    path = write_cases(tmp_path, extra=[set_split], cols=("path", "label", "case_id", "view", "split"))
    with pytest.raises(DataError, match="fall in different splits"):
        load(path)


def test_empty_case_id_is_a_bad_row(tmp_path):
    path = write_cases(tmp_path, extra=[lambda rows: rows[0].update(case_id="")])
    with pytest.raises(DataError, match=r"row 2 .*the case id \('case_id'\) is empty"):
        load(path)


def test_a_case_mixing_modalities_is_refused(tmp_path):
    from tests.imaging import write_image

    rng = np.random.default_rng(0)
    rows = []
    for c in range(8):
        for v, kind in (("a", "dicom_ct"), ("b", "dicom_mr" if c == 3 else "dicom_ct")):
            path = write_image(kind, tmp_path / f"c{c}_{v}", c % 2, rng)
            rows.append(f"{path.name},{c % 2},c{c},{v}")
    (tmp_path / "m.csv").write_text("path,label,case_id,view\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"case 'c3' \(rows 8, 9\): its images differ in modality \(CT, MR\)"):
        load(tmp_path / "m.csv")


def test_cases_of_volumes_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="groups volumes into cases"):
        load(write_cases(tmp_path), volumes=True)

"""The catalogue of bad inputs for your own images: each one gets a clear message naming the row and file.

Each case below builds a small, otherwise valid manifest of real PNG files, breaks one thing, and checks the
message says what was wrong, where (CSV row, file, column or setting) and, where there is one, what to do.
The catalogue is also listed in docs/bad-inputs.md.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from medclass.config import DataConfig, PreprocessConfig
from medclass.data.build import build_dataset
from medclass.data.folders import import_folder
from medclass.data.manifest import read_manifest
from medclass.errors import ConfigError, DataError

from .test_manifest import read_rows, write_csv, write_png_dataset


def _edit(rows_fn: Callable[[list[dict], Path], list[dict] | None]):
    def setup(root: Path) -> tuple[Path, dict]:
        rows = read_rows(root / "manifest.csv")
        out = rows_fn(rows, root)
        return write_csv(root / "case.csv", out if out is not None else rows), {}
    return setup


def _set(i: int, **kv):
    def fn(rows, root):
        rows[i].update(kv)
    return fn


def _write_file(i: int, data: bytes, suffix: str = ".png"):
    def fn(rows, root):
        rows[i]["path"] = f"broken/{i}{suffix}"
        (root / "broken").mkdir(exist_ok=True)
        (root / rows[i]["path"]).write_bytes(data)
    return fn


def _truncated_png(rows, root):
    full = (root / rows[2]["path"]).read_bytes()
    (root / "broken").mkdir(exist_ok=True)
    (root / "broken/trunc.png").write_bytes(full[: len(full) // 2])
    rows[2]["path"] = "broken/trunc.png"


def _dicom(name: str, i: int = 2):
    def fn(rows, root):
        (root / "dcm").mkdir(exist_ok=True)
        shutil.copy(get_testdata_file(name), root / "dcm" / f"{i}.dcm")
        rows[i]["path"] = f"dcm/{i}.dcm"
    return fn


def _colour(rows, root):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / "rgb.png")
    rows[3]["path"] = "rgb.png"


def _no_val_lesions(rows, root):
    for r in rows:
        pid = int(r["patient_id"][1:])
        r["split"] = "test" if pid >= 20 else ("val" if pid in (16, 18) else "train")


def _numbers(rows, root):
    for r in rows:
        r["label"] = {"normal": "0", "lesion": "1"}[r["label"]]
    rows[3]["label"], rows[5]["label"] = "1.0", "01"


def _accents(rows, root):
    for r in rows:
        r["label"] = r["label"].replace("lesion", "l\u00e9sion")  # é as one code point (NFC)
    rows[3]["label"] = "le\u0301sion"  # e + combining accent (NFD): looks the same


def _two_heads(rows, root):
    for i, r in enumerate(rows):
        r["grade"] = "high" if i % 3 else "low"
    rows[4]["grade"] = "High"


def _columns(drop: str | None = None, rename: tuple[str, str] | None = None):
    def fn(rows, root):
        out = []
        for r in rows:
            r = dict(r)
            if drop:
                r.pop(drop)
            if rename:
                r[rename[1]] = r.pop(rename[0])
            out.append(r)
        return out
    return fn


def _raw(text: str | bytes):
    def setup(root: Path) -> tuple[Path, dict]:
        p = root / "case.csv"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return p, {}
    return setup


def _with_cfg(setup, **cfg):
    def wrapped(root):
        path, _ = setup(root)
        return path, cfg
    return wrapped


# (id, setup, expected pieces of the message)
CASES = [
    ("manifest-missing", lambda root: (root / "nope.csv", {}), ["nope.csv", "does not exist"]),
    ("manifest-empty", _raw(""), ["is empty", "header row"]),
    ("manifest-header-only", _raw("path,label\n"), ["has a header but no rows"]),
    ("manifest-not-utf8", _raw("path,label\n\xff\xfe.png,1\n".encode("latin-1")), ["not UTF-8", "CSV UTF-8"]),
    ("path-column-missing", _edit(_columns(rename=("path", "file"))), ["lacks the column(s) 'path'", "file"]),
    ("label-column-misspelt", _edit(_columns(rename=("label", "lable"))),
     ["lacks the column(s) 'label'", "Did you mean 'lable'?", "data.label_columns"]),
    ("patient-column-named-but-missing", _with_cfg(_edit(lambda r, root: None), patient_column="subject"),
     ["'subject'", "data.patient_column"]),
    ("duplicate-column", _raw("path,label,label\na.png,1,1\n"), ["label more than once"]),
    ("too-many-cells", _raw("path,label\na.png,1,extra\nb.png,0\n"), ["row 2", "2 columns"]),
    ("empty-path", _edit(_set(4, path="")), ["row 6", "'path' cell is empty"]),
    ("duplicate-path", _edit(lambda rows, root: rows + [dict(rows[1])]), ["row 50", "listed twice (also row 3)"]),
    ("empty-label", _edit(_set(1, label="")), ["row 3", "label cell 'label' is empty"]),
    ("label-not-in-classes", _with_cfg(_edit(_set(7, label="lesoin")), classes=("normal", "lesion")),
     ["row 9", "'lesoin' is not one of the classes normal, lesion", "Did you mean 'lesion'?"]),
    ("one-class-only", _edit(lambda rows, root: [dict(r, label="normal") for r in rows]),
     ["only one class ('normal')"]),
    ("multilabel-bad-value", _with_cfg(_edit(lambda rows, root: [dict(r, a="1", b="yes" if i == 3 else "0")
                                                                 for i, r in enumerate(rows)]),
                                       label_columns=("a", "b")), ["row 5", "b='yes'", "0, 1 or empty"]),
    ("missing-patient-id", _edit(_set(6, patient_id="")), ["row 8", "patient id ('patient_id') is empty",
                                                          "patient-level split"]),
    ("bad-split-name", _edit(lambda rows, root: [dict(r, split="training" if i == 2 else "train")
                                                 for i, r in enumerate(rows)]),
     ["row 4", "'training' must be train, val or test"]),
    ("split-partly-filled", _edit(lambda rows, root: [dict(r, split="train" if i else "")
                                                      for i, r in enumerate(rows)]),
     ["row 2", "'split' column is empty here but filled elsewhere"]),
    ("image-missing", _edit(_set(3, path="p001/gone.png")), ["row 5 (p001/gone.png)", "does not exist"]),
    ("image-is-folder", _edit(_set(3, path="p001")), ["row 5 (p001)", "(it is a folder; "]),
    ("image-corrupt", _edit(_write_file(2, b"\x89PNG\r\n\x1a\n garbage")), ["row 4 (broken/2.png)"]),
    ("image-not-an-image", _edit(_write_file(2, b"hello, I am text", ".jpg")), ["row 4 (broken/2.jpg)"]),
    ("image-truncated", _edit(_truncated_png), ["row 4 (broken/trunc.png)"]),
    ("dicom-truncated", _edit(_dicom("MR_truncated.dcm")), ["row 4 (dcm/2.dcm)"]),
    ("dicom-without-pixel-data", _edit(_dicom("DICOMDIR")), ["row 4 (dcm/2.dcm)", "no pixel data"]),
    ("dicom-frame-out-of-range", _with_cfg(_edit(_dicom("SC_rgb_2frame.dcm")), frame="5", channels=1),
     ["row 4 (dcm/2.dcm)", "frame"]),
    ("ct-window-on-non-ct", _with_cfg(_edit(lambda r, root: None), preprocess=PreprocessConfig(preset="ct-lung")),
     ["row 2", "Hounsfield"]),
    ("mixed-channels", _edit(_colour), ["mixes grey and colour", "row 5 ('rgb.png') is colour",
                                        "data.channels=1"]),
    ("empty-class-in-split", _edit(_no_val_lesions), ["val", "lesion"]),
    ("image-root-missing", _with_cfg(_edit(lambda r, root: None), image_root="/no/such/folder"),
     ["Image root '/no/such/folder'", "data.image_root"]),
    ("saved-split-misses-rows", _with_cfg(_edit(lambda r, root: None), split_file="SPLIT"), ["p011"]),
    ("label-spelling-case", _edit(_set(3, label="Lesion")),
     ["labels that differ only in spelling", "column 'label': 'lesion' (rows 4, 8, 9 and 20 more), 'Lesion' (row 5)",
      "Fix the CSV", "list every spelling in data.classes"]),
    ("label-spelling-numbers", _with_cfg(_edit(_numbers), task="multiclass"),
     ["column 'label': '1' (rows 4, 8, 9 and 20 more), '1.0' (row 5), '01' (row 7)"]),
    ("label-spelling-unicode", _with_cfg(_edit(_accents), task="ordinal"), ["'le\u0301sion' (row 5)"]),
    ("label-spelling-multitask-head", _with_cfg(_edit(_two_heads), task="multitask", label_columns=("label", "grade")),
     ["column 'grade': 'high' (rows 3, 4, 7 and 28 more), 'High' (row 6)"]),
]


@pytest.mark.parametrize("case,setup,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_message(tmp_path, case, setup, expected):
    write_png_dataset(tmp_path)
    path, cfg = setup(tmp_path)
    if cfg.get("split_file") == "SPLIT":  # a split saved for a manifest that lacked patient 11's rows
        lines = [ln for ln in (tmp_path / "manifest.csv").read_text().splitlines()]
        (tmp_path / "split.csv").write_text("key,split\n" + "".join(
            f"{ln.split(',')[0]},{'test' if 'p02' in ln else 'train'}\n" for ln in lines[1:] if "p011" not in ln))
        cfg["split_file"] = str(tmp_path / "split.csv")
    with pytest.raises((DataError, ConfigError)) as e:
        build_dataset(DataConfig(manifest=str(path), **cfg))
    msg = str(e.value)
    for piece in expected:
        assert piece in msg, f"{case}: {piece!r} not in:\n{msg}"
    assert "Traceback" not in msg


def test_spellings_listed_in_data_classes_are_separate_classes_and_outer_spaces_are_not_a_spelling(tmp_path):
    write_png_dataset(tmp_path)
    rows = read_rows(tmp_path / "manifest.csv")
    rows[3]["label"] = "Lesion"
    path = write_csv(tmp_path / "case.csv", rows)
    m = read_manifest(DataConfig(manifest=str(path), classes=("normal", "lesion", "Lesion")))
    assert m.classes == ("normal", "lesion", "Lesion") and m.task == "multiclass" and m.labels[3] == 2
    rows[3]["label"] = " lesion  "  # surrounding spaces are stripped when the cells are read: one class
    m = read_manifest(DataConfig(manifest=str(write_csv(tmp_path / "case.csv", rows))))
    assert m.classes == ("lesion", "normal") and m.task == "binary"
    for i, r in enumerate(rows):  # multi-label columns read 1 and 1.0 as one value: nothing to refuse
        r["finding"] = "1" if i == 2 else "1.0" if i % 4 >= 2 else "0"
    m = read_manifest(DataConfig(manifest=str(write_csv(tmp_path / "case.csv", rows)), label_columns=("finding",),
                                 task="multilabel"))
    assert m.labels[:6, 0].tolist() == [0, 0, 1, 1, 0, 0]


def test_data_check_reports_spelling_variants_instead_of_ok(tmp_path, capsys):
    from medclass.cli.main import main

    write_png_dataset(tmp_path)
    rows = read_rows(tmp_path / "manifest.csv")
    rows[3]["label"] = "Lesion"
    path = write_csv(tmp_path / "case.csv", rows)
    assert main(["data", "check", str(path)]) != 0
    out, err = capsys.readouterr()
    assert "OK" not in out and "differ only in spelling" in err and "'Lesion' (row 5)" in err


def test_catalogue_is_long_enough():
    assert len(CASES) >= 20


def test_import_folder_needs_two_class_folders_with_images(tmp_path):
    (tmp_path / "only").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "only" / "a.png")
    with pytest.raises(DataError, match="holds 1 class folder"):
        import_folder(tmp_path, tmp_path / "m.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="'empty' .* hold no images"):
        import_folder(tmp_path, tmp_path / "m.csv")
    with pytest.raises(DataError, match="is not a folder"):
        import_folder(tmp_path / "nothing", tmp_path / "m.csv")
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        import_folder(tmp_path, tmp_path / "m.csv", patient_regex="(")

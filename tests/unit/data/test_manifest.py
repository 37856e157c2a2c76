"""Manifests and folders of your own images: reading, decoding once, splitting, leakage, training."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medclass.config import DataConfig, PreprocessConfig, config_from_dict
from medclass.data.build import build_dataset
from medclass.data.folders import import_folder
from medclass.data.leakage import LeakageError
from medclass.data.manifest import read_manifest
from medclass.data.manifest_dataset import check_manifest
from medclass.runs import evaluate_run, train


def _lesion_image(rng: np.random.Generator, label: int, size: int = 40) -> np.ndarray:
    """A noisy grey image; class 1 has a bright blob in a random place (learnable, all images distinct)."""
    img = rng.integers(0, 90, size=(size, size)).astype(np.uint8)
    if label:
        r, c = rng.integers(4, size - 14, size=2)
        img[r:r + 10, c:c + 10] = 230
    return img


def write_png_dataset(root: Path, n_patients: int = 24, per_patient: int = 2, seed: int = 0,
                      extra_columns: bool = True) -> Path:
    """PNG files for ``n_patients`` patients with a manifest.csv; labels alternate by patient."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = p % 2
        for k in range(per_patient):
            rel = f"p{p:03d}/img{k}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_lesion_image(rng, label)).save(root / rel)
            rows.append({"path": rel, "label": ["normal", "lesion"][label], "patient_id": f"P{p:03d}",
                         "site": "AB"[p % 3 == 0], "age": str(30 + p)})
    write_csv(root / "manifest.csv", rows if extra_columns else [
        {k: r[k] for k in ("path", "label", "patient_id")} for r in rows])
    return root / "manifest.csv"


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def data_cfg(manifest: Path, **kw) -> DataConfig:
    return DataConfig(manifest=str(manifest), size=kw.pop("size", 28), **kw)


def run_cfg(manifest: Path, epochs: int = 1, **data):
    return config_from_dict({"data": {"manifest": str(manifest), **data}, "model": {"name": "resnet9", "width": 4},
                             "train": {"epochs": epochs, "batch_size": 16}, "eval": {"batch_size": 64,
                                                                                     "n_boot": 200}})


# --- reading ------------------------------------------------------------------------------------


def test_manifest_to_dataset_keeps_patients_together_and_records_metadata(tmp_path):
    m = write_png_dataset(tmp_path)
    ds = build_dataset(data_cfg(m))
    assert ds.task == "binary" and ds.labels == ("lesion", "normal") and ds.channels == 1 and ds.size == 28
    assert sum(len(s) for s in ds.splits.values()) == 48
    owners = {}
    for name, s in ds.splits.items():
        assert s.images.shape[1:] == (28, 28, 1) and s.images.dtype == np.uint8
        for pid in s.meta["patient_id"]:
            owners.setdefault(pid, set()).add(name)
    assert all(len(v) == 1 for v in owners.values())  # an example is a patient, not an image
    assert set(ds.files) >= {"split.csv", "leakage.json"}
    assert ds.facts["subgroup_columns"] == ["site"]  # age has too many values to be a subgroup
    assert ds.facts["patients"] == 24


def test_split_column_and_saved_split_are_reused(tmp_path):
    m = write_png_dataset(tmp_path)
    ds = build_dataset(data_cfg(m))
    split_csv = tmp_path / "split.csv"
    split_csv.write_text(ds.files["split.csv"])
    again = build_dataset(data_cfg(m, split_file=str(split_csv), split_seed=7))
    for name in ("train", "val", "test"):
        assert list(again.split(name).meta["path"]) == list(ds.split(name).meta["path"])
    other = build_dataset(data_cfg(m, split_seed=7))
    assert any(list(other.split(n).meta["path"]) != list(ds.split(n).meta["path"]) for n in ("train", "test"))


def test_multilabel_manifest_with_missing_labels(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for i in range(30):
        Image.fromarray(_lesion_image(rng, i % 2)).save(tmp_path / f"{i}.png")
        rows.append({"path": f"{i}.png", "effusion": str(i % 2), "nodule": "" if i % 5 == 0 else str((i // 2) % 2),
                     "split": ["train", "train", "val", "test", "train", "train"][i % 6] if i >= 12 else
                     ["train", "val", "test"][i % 3]})
    m = write_csv(tmp_path / "m.csv", rows)
    ds = build_dataset(DataConfig(manifest=str(m), label_columns=("effusion", "nodule")))
    assert ds.task == "multilabel" and ds.labels == ("effusion", "nodule")
    labels = np.concatenate([s.labels for s in ds.splits.values()])
    assert labels.shape == (30, 2) and (labels == -1).sum() == 6


# --- decode once ------------------------------------------------------------------------------------


def test_decoded_images_are_cached_and_the_cache_follows_the_files(tmp_path):
    m = write_png_dataset(tmp_path)
    cache = tmp_path / "cache"
    first = build_dataset(data_cfg(m, cache_dir=str(cache)))
    second = build_dataset(data_cfg(m, cache_dir=str(cache)))
    assert not first.facts["decode"]["from_cache"] and second.facts["decode"]["from_cache"]
    for name in first.splits:
        assert np.array_equal(first.split(name).images, second.split(name).images)
    assert len(list(cache.glob("*.npy"))) == 1
    # preprocessing settings are part of the key...
    third = build_dataset(data_cfg(m, cache_dir=str(cache), preprocess=PreprocessConfig(clahe=True)))
    assert not third.facts["decode"]["from_cache"]
    # ...and so is every file: touching one image invalidates the cache
    img = tmp_path / "p000/img0.png"
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(img)
    fourth = build_dataset(data_cfg(m, cache_dir=str(cache)))
    assert not fourth.facts["decode"]["from_cache"]


# --- leakage ------------------------------------------------------------------------------------------


def _with_split(m: Path) -> list[dict]:
    rows = read_rows(m)
    for i, r in enumerate(rows):
        p = int(r["patient_id"][1:])
        r["split"] = "test" if p >= 20 else ("val" if p >= 16 else "train")
    return rows


def test_clean_split_passes_the_leakage_checks(tmp_path):
    m = write_csv(tmp_path / "fixed.csv", _with_split(write_png_dataset(tmp_path)))
    result = check_manifest(data_cfg(m))
    assert result.ok and result.leakage.ok, result.summary()


def test_planted_leaks_are_all_caught_and_refused(tmp_path):
    m = write_png_dataset(tmp_path)
    rows = _with_split(m)
    # 1. a patient in train and test
    rows[0]["patient_id"] = "P021"
    # 2. an exact duplicate image under another name, in the test split
    dup = tmp_path / "copies" / "dup.png"
    dup.parent.mkdir()
    dup.write_bytes((tmp_path / rows[2]["path"]).read_bytes())
    rows.append({**rows[2], "path": "copies/dup.png", "patient_id": "X1", "split": "test"})
    # 3. a re-saved near-duplicate: upscaled, JPEG-compressed, slightly brighter
    src = np.asarray(Image.open(tmp_path / rows[4]["path"])).astype(float)
    near = Image.fromarray(np.clip(src * 1.03 + 2, 0, 255).astype(np.uint8)).resize((120, 120), Image.BICUBIC)
    near.save(tmp_path / "copies" / "near.jpg", quality=80)
    rows.append({**rows[4], "path": "copies/near.jpg", "patient_id": "X2", "split": "val"})
    leaky = write_csv(tmp_path / "leaky.csv", rows)

    result = check_manifest(data_cfg(leaky))
    kinds = sorted(leak.kind for leak in result.leakage.leaks)
    assert kinds == ["duplicate", "near-duplicate", "patient"], result.summary()
    text = result.summary()
    assert "P021" in text and "copies/dup.png" in text and "copies/near.jpg" in text
    with pytest.raises(LeakageError) as e:
        build_dataset(data_cfg(leaky))
    assert "P021" in str(e.value) and "data.leakage=warn" in str(e.value)
    # knowingly proceeding is possible and recorded
    ds = build_dataset(data_cfg(leaky, leakage="warn"))
    assert ds.facts["leakage"] == {"ok": False, "leaks": 3, "policy": "warn"}


# --- training from your own images ------------------------------------------------------------------------


def test_train_one_epoch_from_a_folder_of_pngs_then_evaluate_by_patient(tmp_path):
    src = tmp_path / "folder"
    rng = np.random.default_rng(3)
    for cls, label in (("normal", 0), ("lesion", 1)):
        for p in range(14):
            for k in range(2):
                f = src / cls / f"pat{cls}{p:02d}" / f"{k}.png"
                f.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(_lesion_image(rng, label)).save(f)
    manifest = import_folder(src, tmp_path / "manifest.csv")
    rows = read_rows(manifest)
    assert len(rows) == 56 and {r["label"] for r in rows} == {"normal", "lesion"}
    assert rows[0]["patient_id"].startswith("pat") and (tmp_path / rows[0]["path"]).is_file()

    run = train(run_cfg(manifest), tmp_path / "run")
    for name in ("split.csv", "leakage.json", "dataset.json", "predictions/val.csv"):
        assert (run.path / name).is_file(), name
    assert run.read_status()["state"] == "complete"
    metrics = evaluate_run(run.path, "test")
    assert metrics["bootstrap"]["unit"] == "patient"
    pred = read_rows(run.path / "predictions" / "test.csv")
    assert {"path", "patient_id"} <= set(pred[0])


def test_skip_bad_skips_and_lists_bad_rows_in_the_run_folder(tmp_path):
    m = write_png_dataset(tmp_path, n_patients=28)
    rows = read_rows(m)
    rows[3]["path"] = "p001/missing.png"
    (tmp_path / rows[5]["path"]).write_bytes(b"not a png at all")
    bad = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(Exception, match=r"row 5 \(p001/missing.png\)"):
        train(run_cfg(bad), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()  # nothing written before the data is known to be good
    run = train(run_cfg(bad, skip_bad=True), tmp_path / "run")
    listed = read_rows(run.path / "bad_rows.csv")
    assert [r["row"] for r in listed] == ["5", "7"] and "does not exist" in listed[0]["reason"]


def test_read_manifest_parses_rows_without_decoding_any_image(tmp_path):
    m = write_png_dataset(tmp_path, n_patients=4)
    for png in tmp_path.rglob("*.png"):
        png.unlink()  # reading the CSV must not touch the images
    man = read_manifest(data_cfg(m))
    assert len(man) == 8 and man.classes == ("lesion", "normal") and man.patient_ids[0] == "P000"
    assert man.labels.tolist() == [1, 1, 0, 0, 1, 1, 0, 0] and man.metadata["site"][:2] == ["B", "B"]


def test_metrics_record_the_checkpoint_chosen_on_validation(tmp_path):
    run = train(run_cfg(write_png_dataset(tmp_path), epochs=2), tmp_path / "run")
    metrics = evaluate_run(run.path, "test")
    assert metrics["checkpoint"]["epoch"] in (1, 2) and metrics["checkpoint"]["val_auc"] is not None


def test_resume_reuses_the_saved_split(tmp_path):
    from medclass.run_folder import RunFolder
    from medclass.runs import resume

    m = write_png_dataset(tmp_path)
    run = train(run_cfg(m, epochs=2), tmp_path / "run")
    saved = (run.path / "split.csv").read_text()
    folder = RunFolder(run.path)
    folder.write_status("interrupted", epochs_completed=1)  # pretend it stopped early
    cfg_text = (run.path / "config.yaml").read_text()
    assert "split_seed: 0" in cfg_text
    (run.path / "config.yaml").write_text(cfg_text.replace("split_seed: 0", "split_seed: 5"))  # would re-split
    resume(run.path)
    assert run.read_status()["state"] == "complete"
    saved_val = sorted(r["key"] for r in csv.DictReader(saved.splitlines()) if r["split"] == "val")
    scored_val = sorted(r["path"] for r in read_rows(run.path / "predictions" / "val.csv"))
    assert scored_val == saved_val  # validation after the resume used the saved split, not a new one

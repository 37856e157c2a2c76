"""Decode cost on a manifest of real DICOM files: epoch times with and without the decode cache.

Without a cache, a data loader that reads files in ``__getitem__`` (the usual ``torch.utils.data.Dataset``
with pydicom) pays the full decode in every epoch. medclass decodes and preprocesses each file once, caches
the result as a memory-mapped array, and later epochs and later runs only read that array. This script
measures, on real files from pydicom's test data and the pydicom-data package (radiographs up to
1955 x 1841 px, CT, MR, ultrasound, several of them JPEG 2000 compressed):

- ``decode_s``: one decode-and-preprocess pass over the manifest (cache empty): what a decode-every-epoch
  loader adds to each epoch;
- ``cached_load_s``: building the dataset again with the cache warm (the next run's start-up cost);
- ``train_epoch_s``: one training epoch on the decoded images (median of the epochs).

Usage: ``python benchmarks/decode_cache.py [--copies 10] [--repeats 3] [--size 64]``. Results go to
``benchmarks/results/decode_cache.json`` and a table to stdout. Copies of each file (and the compressed and
uncompressed encodings of one picture) are rows of one "patient", so the leakage checks treat them as
within-split repeats, not leaks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from pydicom.data import get_testdata_file

from medclass.config import config_from_dict, replace
from medclass.data.build import build_dataset
from medclass.runs import train

FILES = {  # file -> label (projection radiography / ultrasound vs cross-sectional CT / MR)
    "RG1_UNCR.dcm": "projection", "RG1_J2KR.dcm": "projection", "RG3_UNCR.dcm": "projection",
    "RG3_J2KR.dcm": "projection", "OBXXXX1A.dcm": "projection", "JPGLosslessP14SV1_1s_1f_8b.dcm": "projection",
    "693_UNCR.dcm": "cross-sectional", "693_J2KR.dcm": "cross-sectional", "MR2_UNCR.dcm": "cross-sectional",
    "MR2_J2KR.dcm": "cross-sectional", "CT_small.dcm": "cross-sectional", "MR_small.dcm": "cross-sectional",
    "explicit_VR-UN.dcm": "cross-sectional", "MR-SIEMENS-DICOM-WithOverlays.dcm": "cross-sectional",
    "examples_overlay.dcm": "cross-sectional", "emri_small.dcm": "cross-sectional",
    "gdcm-US-ALOKA-16.dcm": "projection", "JPEG2000.dcm": "projection",
}


def make_manifest(root: Path, copies: int) -> Path:
    lines = ["path,label,patient_id"]
    for name, label in FILES.items():
        src = Path(get_testdata_file(name))
        for k in range(copies):
            dst = root / Path(name).stem / f"{k}.dcm"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
            # the _UNCR / _J2KR files are the same picture stored two ways: one "patient" (else: a leak)
            patient = Path(name).stem.replace("_UNCR", "").replace("_J2KR", "")
            lines.append(f"{dst.relative_to(root).as_posix()},{label},{patient}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


def measure(copies: int, size: int, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = make_manifest(root, copies)
        cfg = config_from_dict({
            "data": {"manifest": str(manifest), "size": size, "channels": 1, "split_ratios": [0.6, 0.2, 0.2],
                     "cache_dir": str(root / "cache")},
            "train": {"epochs": epochs, "batch_size": 32}, "eval": {"n_boot": 200}})
        t0 = time.perf_counter()
        cold = build_dataset(cfg.data)
        decode_s = time.perf_counter() - t0
        assert not cold.facts["decode"]["from_cache"]
        t0 = time.perf_counter()
        warm = build_dataset(cfg.data)
        cached_s = time.perf_counter() - t0
        assert warm.facts["decode"]["from_cache"]
        run = train(replace(cfg, data=replace(cfg.data, cache=True)), root / "run")
        hist = run.read_history()
        return {"rows": len(FILES) * copies, "decode_s": decode_s, "cached_load_s": cached_s,
                "train_epoch_s": statistics.median(float(r["seconds"]) for r in hist),
                "train_images": len(warm.split("train"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "decode_cache.json"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    runs = [measure(args.copies, args.size, args.epochs) for _ in range(args.repeats)]
    med = {k: statistics.median(r[k] for r in runs) for k in ("decode_s", "cached_load_s", "train_epoch_s")}
    rows, n_train = runs[0]["rows"], runs[0]["train_images"]
    result = {"files": list(FILES), "copies": args.copies, "rows": rows, "size": args.size, "repeats": runs,
              "median": med,
              "epoch_s": {"decode_every_epoch": {"epoch1": med["decode_s"] + med["train_epoch_s"],
                                                 "epoch2": med["decode_s"] + med["train_epoch_s"]},
                          "medclass_first_run": {"epoch1": med["decode_s"] + med["train_epoch_s"],
                                                 "epoch2": med["train_epoch_s"]},
                          "medclass_later_runs": {"epoch1": med["cached_load_s"] + med["train_epoch_s"],
                                                  "epoch2": med["train_epoch_s"]}}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    e = result["epoch_s"]
    print(f"{rows} real DICOM rows ({len(FILES)} files x {args.copies}), {args.size} px, {n_train} training images; "
          f"medians of {args.repeats} runs")
    print(f"decode + preprocess pass: {med['decode_s']:.2f} s; cached load: {med['cached_load_s']:.3f} s; "
          f"train epoch: {med['train_epoch_s']:.2f} s")
    print("| loader | epoch 1 (s) | epoch 2 (s) |\n|---|---|---|")
    for name, label in (("decode_every_epoch", "decode in every epoch"), ("medclass_first_run", "medclass, first run"),
                        ("medclass_later_runs", "medclass, later runs (cache warm)")):
        print(f"| {label} | {e[name]['epoch1']:.2f} | {e[name]['epoch2']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``medclass data``: list, describe and download MedMNIST datasets; import and check your own images."""

from __future__ import annotations

import argparse

from ..config import build_config, deep_merge, parse_overrides
from ..data.download import candidate_dirs, fetch_medmnist
from ..data.medmnist import MEDMNIST, get_info
from ..utils.io import atomic_write_json
from .tables import simple_table


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("data", help="list, describe and download datasets; import and check your own images",
                       parents=[parent])
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    ls = dsub.add_parser("list", parents=[parent], help="every MedMNIST dataset medclass knows")
    ls.set_defaults(run=run_list)
    info = dsub.add_parser("info", parents=[parent],
                           help="facts about one dataset: task, labels, splits, licence, citation")
    info.add_argument("name")
    info.add_argument("--data-dir", metavar="DIR", help="also say whether/where the files are found")
    info.set_defaults(run=run_info)
    dl = dsub.add_parser("download", parents=[parent], help="download (or verify) a dataset file",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    dl.add_argument("name")
    dl.add_argument("--size", type=int, default=28, help="image size in px")
    dl.add_argument("--data-dir", metavar="DIR", help="folder to put it in (else $MEDCLASS_DATA, then cache)")
    dl.set_defaults(run=run_download)
    imp = dsub.add_parser("import-folder", parents=[parent],
                          help="write a manifest CSV for a folder with one sub-folder per class",
                          description="Write a manifest for DIR/<class>/... (patient id: the first sub-folder "
                                      "below the class folder, or --patient-regex on the file name).")
    imp.add_argument("folder", metavar="DIR")
    imp.add_argument("--out", metavar="CSV", required=True, help="manifest to write")
    imp.add_argument("--patient-regex", metavar="REGEX",
                     help="regular expression whose first group, searched in each file name, is the patient id")
    imp.set_defaults(run=run_import_folder)
    exp = dsub.add_parser("export-images", parents=[parent],
                          help="write a dataset split as PNG files with a manifest CSV (to try predict, explain, "
                               "evaluate --manifest)")
    exp.add_argument("name", help="a MedMNIST name or an .npz file")
    exp.add_argument("--split", default="test", choices=("train", "val", "test"))
    exp.add_argument("--out", metavar="DIR", required=True, help="folder for the PNGs and manifest.csv")
    exp.add_argument("--limit", type=int, metavar="N", help="only the first N images of the split")
    exp.add_argument("--size", type=int, default=28, help="image size in px")
    exp.add_argument("--data-dir", metavar="DIR", help="where the MedMNIST files are")
    exp.set_defaults(run=run_export_images)

    chk = dsub.add_parser("check", parents=[parent],
                          help="check a manifest: unreadable rows, split, leaked patients and duplicates",
                          description="Read, decode, split and check a manifest for leakage across splits "
                                      "(shared patients, exact and near-duplicate images) without training. "
                                      "Exit status 1 when anything is wrong.")
    chk.add_argument("manifest", metavar="CSV")
    chk.add_argument("--image-root", metavar="DIR", help="folder the paths are relative to (default: the CSV's)")
    chk.add_argument("--config", metavar="FILE.yaml", help="settings (data.preprocess, data.split_ratios, ...)")
    chk.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="override a setting")
    chk.add_argument("--split-file", metavar="CSV", help="check a saved split (a run's split.csv) instead")
    chk.add_argument("--json", metavar="PATH", help="also write the leakage report as JSON")
    chk.set_defaults(run=run_check)


def run_list(args: argparse.Namespace) -> int:
    rows = [[d.name, f"{d.spatial_dims}D", d.modality, d.task, d.num_classes, d.channels,
             "/".join(str(d.n_samples[s]) for s in ("train", "val", "test")), ",".join(map(str, d.sizes)), d.license]
            for d in MEDMNIST.values()]
    print(simple_table(["name", "dims", "modality", "task", "classes", "ch", "train/val/test", "sizes", "licence"],
                       rows))
    print("\n3D datasets hold volumes (28 or 64 voxels a side) and train with a 3D model (`medclass models list`; "
          "without --model: cnn3d_small).")
    return 0


def run_info(args: argparse.Namespace) -> int:
    d = get_info(args.name)
    lines = [
        f"{d.title} ({d.name})", f"  modality:   {d.modality} ({d.spatial_dims}D)", f"  task:       {d.task}",
        f"  channels:   {d.channels}", f"  sizes:      {', '.join(f'{s} px' for s in d.sizes)}",
        "  splits:     " + ", ".join(f"{s} {n}" for s, n in d.n_samples.items()),
        "  labels:     " + "; ".join(f"{i} = {n}" for i, n in enumerate(d.labels)),
    ]
    if d.positive_label is not None:
        lines.append(f"  positive:   {d.labels[d.positive_label]} (sensitivity/specificity refer to it)")
    lines += [f"  licence:    {d.license}", f"  source:     {d.source}", f"  cite:       {d.citation}"]
    if d.notes:
        lines.append(f"  note:       {d.notes}")
    lines.append("  files:")
    for s in d.sizes:
        found = next((p for p in (c / d.filename(s) for c in candidate_dirs(args.data_dir)) if p.is_file()), None)
        lines.append(f"    {d.filename(s):<28} md5 {d.md5[s]}  {'found: ' + str(found) if found else 'not on disk'}")
    print("\n".join(lines))
    return 0


def run_download(args: argparse.Namespace) -> int:
    from .progress import DownloadProgress  # tqdm, imported when the command runs

    d = get_info(args.name)
    path = fetch_medmnist(d, args.size, data_dir=args.data_dir, download=True, progress=DownloadProgress())
    print(f"{path} (MD5 verified)")
    return 0


def run_import_folder(args: argparse.Namespace) -> int:
    from ..data.folders import import_folder  # imported when the command runs

    out = import_folder(args.folder, args.out, patient_regex=args.patient_regex)
    n = sum(1 for _ in open(out, encoding="utf-8")) - 1
    print(f"wrote {out} ({n} images). Next: medclass data check {out}")
    return 0


def run_export_images(args: argparse.Namespace) -> int:
    from ..data.to_files import write_image_files  # imported when the command runs (PyTorch via the dataset)

    out = write_image_files(args.name, args.out, args.split, limit=args.limit, size=args.size, data_dir=args.data_dir)
    n = sum(1 for _ in open(out, encoding="utf-8")) - 1
    print(f"wrote {n} images and {out}. Next: medclass predict RUN {out.parent} --out preds.csv, or "
          f"medclass evaluate RUN --manifest {out}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ..data.manifest_dataset import check_manifest  # imported when the command runs (decoders, PyTorch)

    given = {"data": {"manifest": args.manifest, **({"image_root": args.image_root} if args.image_root else {})}}
    cfg = build_config(None, args.config, deep_merge(given, parse_overrides(args.set)))
    result = check_manifest(cfg.data, split_file=args.split_file)
    print(result.summary())
    if args.json and result.leakage is not None:
        atomic_write_json(args.json, result.leakage.to_dict())
    problems = []
    if result.bad:
        problems.append(f"{len(result.bad)} bad row(s): `medclass train` stops on them unless --skip-bad")
    if result.leakage is not None and not result.leakage.ok:
        problems.append(f"{len(result.leakage.leaks)} leak(s) across splits: `medclass train` refuses them unless "
                        f"data.leakage=warn")
    print("OK: no bad rows, no leakage across splits." if not problems else
          "PROBLEMS found (see above): " + "; ".join(problems) + ".")
    return 0 if result.ok else 1

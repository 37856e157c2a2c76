"""``medclass data``: list, describe and download MedMNIST datasets."""

from __future__ import annotations

import argparse

from ..data.download import candidate_dirs, fetch_medmnist
from ..data.medmnist import MEDMNIST, get_info
from .progress import DownloadProgress
from .tables import simple_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list, describe and download datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    ls = dsub.add_parser("list", help="every MedMNIST dataset medclass knows")
    ls.set_defaults(run=run_list)
    info = dsub.add_parser("info", help="facts about one dataset: task, labels, splits, licence, citation")
    info.add_argument("name")
    info.add_argument("--data-dir", metavar="DIR", help="also say whether/where the files are found")
    info.set_defaults(run=run_info)
    dl = dsub.add_parser("download", help="download (or verify) a dataset file",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    dl.add_argument("name")
    dl.add_argument("--size", type=int, default=28, help="image size in px")
    dl.add_argument("--data-dir", metavar="DIR", help="folder to put it in (else $MEDCLASS_DATA, then cache)")
    dl.set_defaults(run=run_download)


def run_list(args: argparse.Namespace) -> int:
    rows = [[d.name, f"{d.spatial_dims}D", d.modality, d.task, d.num_classes, d.channels,
             "/".join(str(d.n_samples[s]) for s in ("train", "val", "test")), ",".join(map(str, d.sizes)), d.license]
            for d in MEDMNIST.values()]
    print(simple_table(["name", "dims", "modality", "task", "classes", "ch", "train/val/test", "sizes", "licence"],
                       rows))
    print("\n3D datasets are listed for completeness; medclass trains 2D images for now.")
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
    d = get_info(args.name)
    path = fetch_medmnist(d, args.size, data_dir=args.data_dir, download=True, progress=DownloadProgress())
    print(f"{path} (MD5 verified)")
    return 0

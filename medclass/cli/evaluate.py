"""``medclass evaluate``: score a run on a split or on another site's data, or grade a predictions CSV."""

from __future__ import annotations

import argparse

from ..config import TASKS
from ..errors import ConfigError
from ..utils.io import atomic_write_json


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("evaluate", help="score a run on a split (metrics/<split>.json), on external data "
                                        "(--manifest), under corruptions, or grade a predictions CSV",
                       parents=[parent],
                       description="Score a finished run with its validation-chosen checkpoint, with 95%% bootstrap "
                                   "intervals and operating points chosen on validation. --manifest scores data the "
                                   "run never saw (another site or scanner) through the run's own input pipeline. "
                                   "With --predictions, grade a CSV of predictions from any tool instead (columns y "
                                   "or y_0.., p_0, p_1, ...; `medclass predict` writes them).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="?", help="a finished run folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to score")
    p.add_argument("--data-dir", metavar="DIR", help="where the dataset is on this machine")
    p.add_argument("--device", help="override the device (cpu, cuda)")
    p.add_argument("--label-shift", choices=("em", "bbse"), help="also report metrics with the probabilities adapted "
                   "to the class balance estimated from the split's images (Saerens EM or black-box shift "
                   "estimation); the headline numbers stay unadapted")
    x = p.add_argument_group("external validation (data the run never saw)")
    x.add_argument("--manifest", metavar="CSV", help="a manifest of another site's labelled images, scored as the "
                                                     "external set metrics/external-<name>.json")
    x.add_argument("--image-root", metavar="DIR", help="folder the manifest's paths are relative to")
    x.add_argument("--name", help="name of the external set (default: the manifest's file name)")
    x.add_argument("--skip-bad", action="store_true", help="skip unreadable manifest rows (listed) instead of stopping")
    c = p.add_argument_group("robustness")
    c.add_argument("--corruptions", action="store_true", help="score the split under the MedMNIST-C corruptions of "
                                                              "the dataset's modality, five severities each")
    c.add_argument("--severities", default="1,2,3,4,5", help="comma-separated severities to score (1-5)")
    c.add_argument("--corruption-set", metavar="NAME", help="MedMNIST-C set to use, by dataset name (breastmnist, "
                                                            "pneumoniamnist, ...) or generic (default: chosen from "
                                                            "the run's dataset, preset or DICOM modality)")
    c.add_argument("--corruption", action="append", default=[], metavar="NAME",
                   help="score only this corruption of the set (repeatable; default: all)")
    c.add_argument("--corruption-seed", type=int, default=0, help="seed of the corruptions' noise and angles")
    g = p.add_argument_group("grading a predictions file")
    g.add_argument("--predictions", metavar="FILE.csv", help="CSV with y (or y_0, y_1, ...) and p_0, p_1, ... columns")
    g.add_argument("--task", choices=TASKS[:-1], default="binary", help="task of the predictions")
    g.add_argument("--val-predictions", metavar="FILE.csv", help="validation predictions: operating points are "
                                                                 "chosen there")
    g.add_argument("--labels", help="comma-separated class names, in column order")
    g.add_argument("--positive-label", type=int, help="binary: the class index called positive (default 1)")
    g.add_argument("--group-column", help="column with patient ids: intervals resample patients")
    g.add_argument("--subgroup-column", action="append", default=[], help="metadata column for subgroup results")
    g.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates")
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    g.add_argument("--out", metavar="FILE.json", help="where to write the evaluation (predictions mode)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # the workflows load PyTorch: imported when the command runs
    from ..evaluation.assess import AssessConfig
    from ..runs.evaluate import evaluate_predictions, evaluate_run
    from .tables import metrics_table, shift_table

    if args.predictions:
        if args.run_dir:
            raise ConfigError("Give either RUN_DIR or --predictions FILE.csv, not both.")
        labels = tuple(s.strip() for s in args.labels.split(",")) if args.labels else None
        m = evaluate_predictions(args.predictions, args.task, labels, val_path=args.val_predictions,
                                 positive_label=args.positive_label, group_column=args.group_column,
                                 subgroup_columns=tuple(args.subgroup_column),
                                 cfg=AssessConfig(n_boot=args.n_boot, seed=args.seed))
        m["split"] = args.predictions
        print(metrics_table(m))
        if args.out:
            atomic_write_json(args.out, m)
            print(f"wrote {args.out}")
        return 0
    if not args.run_dir:
        raise ConfigError("medclass evaluate needs RUN_DIR (a run folder) or --predictions FILE.csv.")
    if args.manifest:
        from ..runs.external import evaluate_external

        m = evaluate_external(args.run_dir, args.manifest, image_root=args.image_root, name=args.name,
                              skip_bad=args.skip_bad, device=args.device)
        print(metrics_table(m))
        print(shift_table(m["shift"]))
        print(f"wrote {m['files']['metrics']} and {m['files']['predictions']}")
        return 0
    if args.corruptions:
        from ..runs.robustness import evaluate_corruptions
        from .progress import CountProgress
        from .tables import corruption_table

        try:
            severities = tuple(int(s) for s in args.severities.split(",") if s.strip())
        except ValueError:
            raise ConfigError(f"--severities takes comma-separated integers 1-5 (e.g. 1,3,5). Got "
                              f"{args.severities!r} instead.") from None
        r = evaluate_corruptions(args.run_dir, split=args.split, severities=severities, data_dir=args.data_dir,
                                 device=args.device, corruption_set=args.corruption_set,
                                 corruptions=tuple(args.corruption), seed=args.corruption_seed,
                                 progress=CountProgress("corrupted sets", unit="sets"))
        print(corruption_table(r))
        print(f"wrote {args.run_dir}/metrics/corruptions-{args.split}.json")
        return 0
    m = evaluate_run(args.run_dir, split=args.split, data_dir=args.data_dir, device=args.device,
                     label_shift=args.label_shift)
    print(metrics_table(m))
    if "label_shift" in m:
        ls = m["label_shift"]
        shares = ", ".join(f"{a:.1%} -> {b:.1%} (observed {c:.1%})" for a, b, c in
                           zip(ls["source_priors"], ls["estimated_priors"], ls["observed_priors"]))
        adapted = " ".join(f"{k} {ls['metrics'][k]:.4f}" for k in ("auc", "acc", "sensitivity", "specificity")
                           if k in ls["metrics"])
        print(f"label shift ({ls['method']}): class shares {shares}; adapted: {adapted} (headline above unadapted)")
    print(f"wrote {args.run_dir}/metrics/{args.split}.json and predictions/{args.split}.csv")
    return 0

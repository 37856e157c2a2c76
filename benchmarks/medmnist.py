"""Benchmark recipes on MedMNIST datasets: test AUC/ACC, wall time, throughput, beside the published rows.

A script, not a test. Each (recipe, dataset, seed) trains into ``benchmarks/runs/<recipe>/<dataset>/s<seed>``
through the same public functions as ``medclass train`` / ``medclass evaluate``; a finished run is reused and
an interrupted one resumed, so a long benchmark can be stopped and restarted. Results (one JSON row per run)
go to ``benchmarks/results/medmnist.json``; the markdown table to ``benchmarks/results/medmnist.md``.

``--measure-epochs K`` trains only K epochs of a recipe and extrapolates its wall time to the recipe's full
length (the per-epoch cost does not depend on the learning-rate schedule); such rows report no accuracy.

Examples::

    python benchmarks/medmnist.py --recipes default --datasets breastmnist pneumoniamnist --seeds 0 1 2
    python benchmarks/medmnist.py --recipes medmnist-reference --datasets breastmnist --seeds 0 1 2
    python benchmarks/medmnist.py --recipes medmnist-reference --datasets pneumoniamnist --seeds 0 --measure-epochs 3
    python benchmarks/medmnist.py --table-only
    python benchmarks/medmnist.py --measure-sgemm     # on an idle machine
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from medclass import build_config, evaluate_run, resume, train
from medclass.cli.progress import TrainingProgress
from medclass.data.datasets import load_dataset
from medclass.models import build_model
from medclass.run_folder import RunFolder, load_run_config
from medclass.runs.environment import collect_environment
from medclass.runs.train import dataset_task, run_metadata
from medclass.runs.volumes import match_model

HERE = Path(__file__).resolve().parent

# MedMNIST v2 (Yang et al., Scientific Data 2023), Table 3: test AUC / ACC.
PUBLISHED = {
    "pneumoniamnist": [("ResNet-18 (28)", 0.944, 0.854), ("ResNet-18 (224)", 0.956, 0.864),
                       ("ResNet-50 (28)", 0.948, 0.854), ("ResNet-50 (224)", 0.962, 0.884),
                       ("auto-sklearn", 0.942, 0.855), ("AutoKeras", 0.947, 0.878),
                       ("Google AutoML Vision", 0.991, 0.946)],
    "breastmnist": [("ResNet-18 (28)", 0.901, 0.863), ("ResNet-18 (224)", 0.891, 0.833),
                    ("ResNet-50 (28)", 0.857, 0.812), ("ResNet-50 (224)", 0.866, 0.842),
                    ("auto-sklearn", 0.836, 0.803), ("AutoKeras", 0.871, 0.831),
                    ("Google AutoML Vision", 0.919, 0.861)],
    # MedMNIST v2, Table 4 (3D, 28^3), as recorded in ../shared/data/README.md; its ResNet-50 + 2.5D and ResNet-50 +
    # ACS rows were not available to check here and are left out rather than quoted from memory
    "adrenalmnist3d": [("ResNet-18 + 2.5D", 0.718, 0.772), ("ResNet-18 + 3D", 0.827, 0.721),
                       ("ResNet-18 + ACS", 0.839, 0.754), ("ResNet-50 + 3D", 0.828, 0.745),
                       ("auto-sklearn", 0.828, 0.802), ("AutoKeras", 0.804, 0.705)],
}


def sgemm_peak(n: int = 4096, warmup: int = 3, repeats: int = 25) -> dict[str, float]:
    """Measured fp32 matrix-multiply throughput of this machine in GFLOP/s: median, min and max of ``repeats``.

    A shared VM's throughput drifts by tens of percent from one second to the next (single 5-call medians on
    this machine ranged 109-174 GFLOP/s), so the clock is allowed to settle first and many calls are timed.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(warmup):
        a @ b
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        rates.append(2 * n**3 / (time.perf_counter() - t) / 1e9)
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "repeats": repeats}


def train_flops_per_image(cfg, ds) -> float:
    """Forward + backward FLOPs of one training image (counted by PyTorch's FlopCounterMode)."""
    cfg = match_model(cfg, ds.spatial_dims, ds.name)  # a volume dataset trains a 3D model
    task = dataset_task(cfg, ds)
    model = build_model(run_metadata(cfg, ds, ds.pipeline, task))
    x = torch.randn(8, ds.channels, *(ds.size,) * ds.spatial_dims)
    y = torch.zeros(8, dtype=torch.long)
    with FlopCounterMode(display=False) as fc:
        task.loss()(model(x), task.target(y)).backward()
    return fc.get_total_flops() / 8


def run_one(recipe: str, dataset: str, seed: int, runs_dir: Path, measure_epochs: int | None, sets: list[str],
            quiet: bool) -> dict:
    from medclass.config import parse_overrides

    overrides = {"data": {"dataset": dataset}, "seed": seed, **parse_overrides(sets)}
    full = build_config(recipe, overrides=overrides)
    cfg = full
    tag = recipe
    if measure_epochs:
        cfg = build_config(recipe, overrides={**overrides, "train": {**overrides.get("train", {}),
                                                                     "epochs": measure_epochs}})
        tag = f"{recipe}-first{measure_epochs}"
    out = runs_dir / tag / dataset / f"s{seed}"
    folder = RunFolder(out)
    progress = [TrainingProgress(enabled=not quiet)]
    if folder.is_run() and folder.read_status().get("state") == "complete":
        print(f"[reuse] {out}", file=sys.stderr)
    elif folder.is_run():
        print(f"[resume] {out}", file=sys.stderr)
        resume(out, callbacks=progress)
    else:
        print(f"[train] {out}", file=sys.stderr)
        train(cfg, out, overwrite=True, callbacks=progress)
    st = folder.read_status()
    hist = folder.read_history()
    # wall seconds of each epoch: its training steps plus its validation pass
    epoch_seconds = [float(r["seconds"]) + float(r.get("val_seconds") or 0) for r in hist]
    ds = load_dataset(dataset, size=cfg.data.size, data_dir=cfg.data.data_dir)
    row = {
        "recipe": recipe, "dataset": dataset, "seed": seed, "run": str(out.relative_to(HERE.parent)),
        "epochs_run": st["epochs_completed"], "epochs_recipe": full.train.epochs, "best_epoch": st["best_epoch"],
        "train_seconds": st["train_seconds"], "wall_seconds": st["wall_seconds"], "images_per_s": st["images_per_s"],
        "data_share": st["data_share"],
        "epoch_seconds_median": statistics.median(epoch_seconds),
        "model": load_run_config(folder).model.name, "train_gflop_per_image": train_flops_per_image(cfg, ds) / 1e9,
    }
    if measure_epochs:
        # the first epoch carries one-off warm-up costs: extrapolate from the median epoch
        row["extrapolated_wall_seconds"] = row["epoch_seconds_median"] * full.train.epochs
        row["note"] = f"wall time extrapolated from {measure_epochs} measured epochs to {full.train.epochs}"
    else:
        m = evaluate_run(out, "test")
        row.update(test_auc=m["auc"], test_acc=m["acc"], val_auc=st["best_val_auc"])
    row["achieved_gflop_per_s"] = row["train_gflop_per_image"] * row["images_per_s"]
    return row


def fmt_mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _sgemm_text(machine: dict) -> str:
    g = machine["sgemm_gflops"]
    if isinstance(g, dict):
        return (f"measured fp32 SGEMM peak {g['median']:.0f} GFLOP/s (torch.matmul 4096x4096, median of "
                f"{g['repeats']} after warm-up; range {g['min']:.0f}-{g['max']:.0f})")
    return f"measured fp32 SGEMM peak {g:.0f} GFLOP/s (torch.matmul 4096x4096, median of 5)"


def markdown(rows: list[dict], machine: dict) -> str:
    lines = [
        "# MedMNIST benchmark (28 px; 28³ voxels for the 3D sets)",
        "",
        f"Machine: {machine['cpu']} ({machine['cpu_count']} cores, {machine['torch_threads']} torch threads), "
        f"torch {machine['torch']}; {_sgemm_text(machine)}.",
        "",
        "Test AUC / ACC are mean ± sd over seeds, each scored once with the checkpoint chosen on validation AUC. "
        "Wall time is the whole `medclass train` run after start-up (every epoch's training and validation, "
        "checkpoints, the final validation scoring), median over seeds. Train img/s counts training steps "
        "only. GFLOP/img is forward + backward per training image (PyTorch's FlopCounterMode). Data share is "
        "the fraction of step time spent drawing and augmenting batches.",
        "",
    ]
    for dataset in sorted({r["dataset"] for r in rows}):
        lines += [f"## {dataset}", "",
                  "| method | test AUC | test ACC | seeds | wall (s) | train img/s | GFLOP/img | achieved GFLOP/s | data share |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for recipe in sorted({r["recipe"] for r in rows if r["dataset"] == dataset}):
            rs = [r for r in rows if r["dataset"] == dataset and r["recipe"] == recipe]
            full = [r for r in rs if "test_auc" in r]
            extra = [r for r in rs if "extrapolated_wall_seconds" in r]
            if full:
                lines.append(
                    f"| medclass `{recipe}` | {fmt_mean_sd([r['test_auc'] for r in full])} | "
                    f"{fmt_mean_sd([r['test_acc'] for r in full])} | {len(full)} | "
                    f"{statistics.median(r.get('wall_seconds', r['train_seconds']) for r in full):.0f} | "
                    f"{statistics.median(r['images_per_s'] for r in full):.0f} | "
                    f"{full[0]['train_gflop_per_image']:.3f} | "
                    f"{statistics.median(r['achieved_gflop_per_s'] for r in full):.0f} | "
                    f"{statistics.median(r['data_share'] for r in full):.1%} |")
            if extra:
                e = extra[0]
                lines.append(
                    f"| medclass `{recipe}` (time only: {e['epochs_run']} of {e['epochs_recipe']} epochs measured) "
                    f"| - | - | {len(extra)} | ~{statistics.median(r['extrapolated_wall_seconds'] for r in extra):.0f} "
                    f"(extrapolated) | {statistics.median(r['images_per_s'] for r in extra):.0f} | "
                    f"{e['train_gflop_per_image']:.3f} | "
                    f"{statistics.median(r['achieved_gflop_per_s'] for r in extra):.0f} | "
                    f"{statistics.median(r['data_share'] for r in extra):.1%} |")
        for name, auc, acc in PUBLISHED.get(dataset, []):
            lines.append(f"| MedMNIST v2: {name} | {auc:.3f} | {acc:.3f} | | | | | | |")
        lines.append("")
    lines += ["Published rows: MedMNIST v2 (Yang et al., Scientific Data 10, 41, 2023), Table 3 (2D) and Table 4 "
              "(3D; the ResNet-50 + 2.5D and ResNet-50 + ACS rows could not be checked here and are not shown). "
              "Data: MedMNIST (CC BY 4.0) from Kermany et al., Cell 2018 (PneumoniaMNIST), Al-Dhabyani et al., "
              "Data in Brief 2020 (BreastMNIST) and Zhongshan Hospital, Fudan University (AdrenalMNIST3D).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", default=["default"])
    p.add_argument("--datasets", nargs="+", default=["breastmnist", "pneumoniamnist"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--measure-epochs", type=int, help="train only this many epochs and extrapolate the wall time")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    p.add_argument("--runs-dir", type=Path, default=HERE / "runs")
    p.add_argument("--results", type=Path, default=HERE / "results" / "medmnist.json")
    p.add_argument("--table-only", action="store_true", help="rebuild the markdown table from the results file")
    p.add_argument("--measure-sgemm", action="store_true",
                   help="(re)measure the fp32 SGEMM peak on an otherwise idle machine, then rebuild the table")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    results = json.loads(args.results.read_text()) if args.results.is_file() else {"machine": None, "rows": []}
    if args.measure_sgemm or not (results["machine"] or {}).get("sgemm_gflops"):
        env = collect_environment(torch.device("cpu"), 0)
        # measured once, on an idle machine: runs started later must not overwrite it with a busy reading
        results["machine"] = {"cpu": env["cpu"], "cpu_count": env["cpu_count"], "torch_threads": env["torch_threads"],
                              "torch": env["versions"]["torch"], "sgemm_gflops": sgemm_peak()}
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    if not (args.table_only or args.measure_sgemm):
        for recipe in args.recipes:
            for dataset in args.datasets:
                for seed in args.seeds:
                    row = run_one(recipe, dataset, seed, args.runs_dir, args.measure_epochs, args.set, args.quiet)
                    row["measured"] = time.strftime("%Y-%m-%d")
                    key = (row["recipe"], row["dataset"], row["seed"], "extrapolated_wall_seconds" in row)
                    results["rows"] = [r for r in results["rows"]
                                       if (r["recipe"], r["dataset"], r["seed"], "extrapolated_wall_seconds" in r) != key]
                    results["rows"].append(row)
                    args.results.parent.mkdir(parents=True, exist_ok=True)
                    args.results.write_text(json.dumps(results, indent=2) + "\n")
                    print(json.dumps(row), flush=True)
    md = markdown(results["rows"], results["machine"])
    args.results.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

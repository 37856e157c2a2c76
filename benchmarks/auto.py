"""Benchmark ``medclass auto`` with a 10-minute budget: test AUC/ACC beside the published MedMNIST v2 rows.

A script, not a test. For each dataset and seed it runs :func:`medclass.runs.auto.auto` (screening on validation,
the winner trained, the test split scored once, for the chosen model only) into
``benchmarks/runs/auto/<dataset>/s<seed>``, and records the test metrics, the winner, whether an ensemble was
chosen, the budget and the wall time, and the machine. A finished run (``auto.json``) is reused, so the script
can be stopped and started again; an unfinished one is started again from scratch (auto does not resume).

Datasets:

- ``breastmnist`` (78 validation images: finalists ranked by 5-fold cross-validation on train+val);
- ``pneumoniamnist``;
- ``adrenalmnist3d``: the 28^3 volumes themselves (98 validation volumes: K-fold ranking); auto screens the volume
  portfolio (3D CNNs, ACS, 2.5D, slice pooling: ``medclass/runs/portfolio.py``);
- ``adrenal-mip`` (on request, not by default): the same volumes as three orthogonal maximum-intensity projections,
  a 3-channel 2D image, built by ``benchmarks/generalisation.py``'s ``derived()``.

The published rows are MedMNIST v2's (Yang et al., Scientific Data 2023): Table 3 for the 2D datasets
(``benchmarks/medmnist.py``'s ``PUBLISHED``) and Table 4 for AdrenalMNIST3D, whose models see the 3D volume,
like ``adrenalmnist3d`` (for ``adrenal-mip`` those rows are context, not a like-for-like comparison).

Run it on a quiet machine: the budget is wall-clock time, so other work on the CPU shrinks what auto can do.

Examples::

    python benchmarks/auto.py                                   # 3 datasets x seeds 0-2 x 10 min: about 95 minutes
    python benchmarks/auto.py --datasets breastmnist --seeds 0 --budget 60s --runs-dir /tmp/auto-smoke \\
        --results /tmp/auto-smoke/auto.json                     # a smoke test
    python benchmarks/auto.py --table-only
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

from medclass import build_config
from medclass.cli.auto import parse_budget
from medclass.runs.auto import auto
from medclass.runs.environment import collect_environment
from medclass.utils.io import read_json

HERE = Path(__file__).resolve().parent


def _sibling(name: str):
    """A script beside this one, loaded by path (``medmnist`` would otherwise be the PyPI package)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


derived = _sibling("generalisation").derived  # the AdrenalMNIST3D projections, built once from the official file
PUBLISHED = _sibling("medmnist").PUBLISHED  # MedMNIST v2, Table 3

DATASETS = ("breastmnist", "pneumoniamnist", "adrenalmnist3d", "adrenal-mip")
DEFAULT_DATASETS = DATASETS[:3]
# MedMNIST v2, Table 4 (3D models on the 28^3 volumes): test AUC / ACC; see ../shared/data/README.md
_TABLE4 = [("ResNet-18 + 2.5D", 0.718, 0.772), ("ResNet-18 + 3D", 0.827, 0.721), ("ResNet-18 + ACS", 0.839, 0.754),
           ("ResNet-50 + 3D", 0.828, 0.745), ("auto-sklearn", 0.828, 0.802), ("AutoKeras", 0.804, 0.705)]
# (adrenalmnist3d's own rows are in medmnist.py's PUBLISHED; the projections get them as context)
PUBLISHED_3D = {"adrenal-mip": [(f"{name} (3D volume)", auc, acc) for name, auc, acc in _TABLE4]}


def dataset_arg(name: str, runs: Path) -> str:
    return str(derived(name, runs / "derived")) if name == "adrenal-mip" else name


def run_one(dataset: str, seed: int, budget: float, runs: Path, quiet: bool) -> dict:
    out = runs / dataset / f"s{seed}"
    done = out / "auto.json"
    if done.is_file() and read_json(done).get("state") == "complete" and read_json(done)["budget_seconds"] == budget:
        r, wall = read_json(done), None
    else:
        if out.exists():
            shutil.rmtree(out)  # an unfinished or other-budget run: auto does not resume
        cfg = build_config(overrides={"data": {"dataset": dataset_arg(dataset, runs)}, "seed": seed})
        say = None if quiet else (lambda ph, m, e, b: print(f"[{e:5.0f}s /{b:.0f}s] {ph}: {m}", flush=True))
        t0 = time.perf_counter()
        r = auto(cfg, out, budget_s=budget, on_event=say)
        wall = time.perf_counter() - t0
    t = r["test"]
    return {"dataset": dataset, "seed": seed, "budget_seconds": r["budget_seconds"], "used_seconds": r["used_seconds"],
            "wall_seconds": round(wall, 1) if wall is not None else r["used_seconds"],
            "test_auc": t.get("auc"), "test_acc": t.get("acc"), "test_intervals": t.get("intervals", {}),
            "model": r["model"], "winner": r["winner"]["candidate"], "winner_settings": r["winner"]["settings"],
            "val_score": r["winner"]["val_score"], "cv_score": r["winner"]["cv_score"],
            "ranking": r["ranking"]["by"], "final_epochs": r["final"].get("epochs"),
            "ensemble_chosen": r["ensemble"].get("chosen", False), "screening": r["screening"],
            "seconds": r["seconds"], "run": str(out)}


def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{values[0]:.3f}" if len(values) == 1 else f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def markdown(rows: list[dict], machine: dict) -> str:
    lines = ["# medclass auto with a time budget", "",
             (f"Machine: {machine['cpu']} ({machine['cpu_count']} cores, {machine['torch_threads']} torch threads), "
             f"torch {machine['torch']}. Each run: `medclass auto` with the budget below, everything included (data "
             f"loading, screening, K-fold ranking, final training, ensemble decision, the one scoring of test). Test "
             f"AUC / ACC: mean ± sd over seeds, each scored once for the model auto chose on validation."), ""]
    for dataset in [d for d in DATASETS if any(r["dataset"] == d for r in rows)]:
        rs = sorted((r for r in rows if r["dataset"] == dataset), key=lambda r: r["seed"])
        lines += [f"## {dataset}", "", "| method | test AUC | test ACC | seeds | budget (s) | wall (s), median |",
                  "|---|---|---|---|---|---|",
                  (f"| **medclass auto** | {_mean_sd([r['test_auc'] for r in rs])} | "
                  f"{_mean_sd([r['test_acc'] for r in rs])} | {len(rs)} | {rs[0]['budget_seconds']:.0f} | "
                  f"{statistics.median(r['wall_seconds'] for r in rs):.0f} |")]
        for name, auc, acc in PUBLISHED.get(dataset, []) + PUBLISHED_3D.get(dataset, []):
            lines.append(f"| MedMNIST v2: {name} | {auc:.3f} | {acc:.3f} | | | |")
        lines += ["", ("| seed | chosen on validation | model scored | final epochs | val | CV | test AUC [95% CI] | "
                      "test ACC | screened (complete / pruned / failed / skipped) | wall (s) |"),
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rs:
            iv = r["test_intervals"].get("auc")
            ci = f" [{iv['low']:.3f}, {iv['high']:.3f}]" if iv else ""
            sc = r["screening"]
            lines.append(f"| {r['seed']} | {r['winner']} | {r['model']} | {r['final_epochs']} | "
                         f"{_num(r['val_score'])} | {_num(r['cv_score'])} | {_num(r['test_auc'])}{ci} | "
                         f"{_num(r['test_acc'])} | {sc['complete']} / {sc['pruned']} / {sc['failed']} / "
                         f"{sc['skipped']} | {r['wall_seconds']:.0f} |")
        lines.append("")
    lines += [("Published rows: MedMNIST v2 (Yang et al., Scientific Data 10, 41, 2023), Table 3 (2D, 28 px) and Table "
              "4 (AdrenalMNIST3D: models on the 3D volume, like adrenalmnist3d here; adrenal-mip sees three "
              "maximum-intensity projections). Data: MedMNIST (CC BY 4.0): BreastMNIST (Al-Dhabyani et al. 2020), "
              "PneumoniaMNIST (Kermany et al. 2018), AdrenalMNIST3D (Zhongshan Hospital, Fudan University)."), ""]
    return "\n".join(lines)


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS), choices=DATASETS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--budget", type=parse_budget, default=parse_budget("10m"), help="per run: 90s, 10m, 1h")
    p.add_argument("--runs-dir", type=Path, default=HERE / "runs" / "auto")
    p.add_argument("--results", type=Path, default=HERE / "results" / "auto.json")
    p.add_argument("--table-only", action="store_true", help="rebuild auto.md from the results file")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    results = json.loads(args.results.read_text()) if args.results.is_file() else {"machine": None, "rows": []}
    if not args.table_only:
        env = collect_environment(torch.device("cpu"), 0)
        results["machine"] = {"cpu": env["cpu"], "cpu_count": env["cpu_count"], "torch_threads": env["torch_threads"],
                              "torch": env["versions"]["torch"]}
        for dataset in args.datasets:
            for seed in args.seeds:
                row = {**run_one(dataset, seed, args.budget, args.runs_dir, args.quiet),
                       "measured": time.strftime("%Y-%m-%d")}
                results["rows"] = [r for r in results["rows"] if (r["dataset"], r["seed"]) != (dataset, seed)]
                results["rows"].append(row)
                args.results.parent.mkdir(parents=True, exist_ok=True)
                args.results.write_text(json.dumps(results, indent=2) + "\n")
                print(json.dumps({k: row[k] for k in ("dataset", "seed", "winner", "model", "test_auc", "test_acc",
                                                      "wall_seconds")}), flush=True)
    md = markdown(results["rows"], results["machine"])
    args.results.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Robustness of the ``default`` recipe under the MedMNIST-C corruptions, beside what MedMNIST-C publishes.

A script, not a test. For each dataset and seed it trains the ``default`` recipe (official split; a complete run
under ``benchmarks/runs/corruptions/<dataset>-s<seed>`` is reused), scores its test split once
(``medclass evaluate``) and then under every corruption of the dataset's MedMNIST-C set at severities 1-5
(``medclass evaluate --corruptions``). Nothing is chosen on test.

The comparison: MedMNIST-C's metric is the balanced error (1 - balanced accuracy at the 0.5 threshold, binary
tasks) averaged over the five severities, reported relative to an AlexNet baseline: BE = error / AlexNet's error,
rBE = (error - clean error) / (AlexNet's error - AlexNet's clean error). The AlexNet numbers below are the ones
``medmnistc`` 0.1.0 ships for that normalisation (``medmnistc/utils/baselines.py``, Apache-2.0); they were
measured on the 224 px images, ours on 28 px images with the same corruption parameters, so the columns say
how the two compare, not that the settings match. The ResNet-18 rows of the MedMNIST-C paper (Di Salvo et al.
2024, arXiv:2406.17536) were not checked: the paper's tables could not be read from here, so that column says
"not checked" rather than a guess.

Results go to ``benchmarks/results/corruptions.json`` and ``.md``.

Example::

    python benchmarks/corruptions.py --datasets breastmnist pneumoniamnist --seeds 1
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import torch

from medclass import build_config, evaluate_run, train
from medclass.runs import RunFolder
from medclass.runs.robustness import evaluate_corruptions

HERE = Path(__file__).resolve().parent

# medmnistc 0.1.0, medmnistc/utils/baselines.py (Apache-2.0): AlexNet's balanced error on the clean 224 px test
# split and on each corruption, averaged over the five severities (the normalisation of BE and rBE)
ALEXNET_224 = {
    "breastmnist": {"clean": 0.14536340852130336, "pixelate": 0.46127819548872184,
                    "jpeg_compression": 0.2986215538847118, "speckle_noise": 0.38709273182957393,
                    "motion_blur": 0.25902255639097743, "brightness_up": 0.3197994987468672,
                    "brightness_down": 0.21127819548872181, "contrast_down": 0.15864661654135334},
    "pneumoniamnist": {"clean": 0.10085470085470083, "pixelate": 0.22102564102564104,
                       "jpeg_compression": 0.2798290598290598, "gaussian_noise": 0.4414529914529915,
                       "speckle_noise": 0.3457264957264957, "impulse_noise": 0.4581196581196581,
                       "shot_noise": 0.4106837606837607, "gaussian_blur": 0.2730769230769231,
                       "brightness_up": 0.14649572649572645, "brightness_down": 0.2782051282051282,
                       "contrast_up": 0.09529914529914527, "contrast_down": 0.23743589743589744,
                       "gamma_corr_up": 0.09606837606837607, "gamma_corr_down": 0.16641025641025642},
}


def _run(dataset: str, seed: int, root: Path) -> RunFolder:
    out = root / f"{dataset}-s{seed}"
    folder = RunFolder(out)
    if not (folder.is_run() and folder.read_status().get("state") == "complete"):
        train(build_config("default", overrides={"data": {"dataset": dataset}, "seed": seed}), out, overwrite=True)
    if not folder.metrics("test").is_file():
        evaluate_run(out, "test")
    return folder


def bench(dataset: str, seed: int, root: Path) -> dict:
    folder = _run(dataset, seed, root)
    t0 = time.perf_counter()
    r = evaluate_corruptions(folder.path, "test")
    r["wall_s"] = round(time.perf_counter() - t0, 1)
    r["train_wall_s"] = folder.read_status().get("wall_seconds")
    r["run"] = str(folder.path.relative_to(HERE.parent))
    base = ALEXNET_224.get(dataset, {})
    clean_err = 1 - r["clean"]["balanced_accuracy"]
    for name, c in r["corruptions"].items():
        err = 1 - sum(c["balanced_accuracy"]) / len(c["balanced_accuracy"])
        c["balanced_error"] = err
        if name in base:
            c["alexnet_balanced_error"] = base[name]
            c["be"] = err / base[name]
            gap = base[name] - base["clean"]  # None where AlexNet did no worse corrupted than clean (no scale)
            c["rbe"] = (err - clean_err) / gap if gap > 0 else None
    return r


def _f(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table(results: list[dict], cpu: str) -> str:
    out = ["# Robustness under MedMNIST-C corruptions (`default` recipe, 28 px)", "",
           (f"Machine: {cpu}, 2 cores shared with other work, torch {torch.__version__}. Each run trained once "
           f"(`medclass train --dataset D --seed S`) and scored once on clean test and once per corruption and "
           f"severity (`medclass evaluate RUN --corruptions`); checkpoint and thresholds come from validation. "
           f"Corruptions: MedMNIST-C's definitions and severity parameters (medmnistc 0.1.0) re-implemented in "
           f"medclass, applied to the 28 px images the network sees. MedMNIST-C itself corrupts the 224 px images, "
           f"so blur, pixelation and JPEG are relatively stronger here."), ""]
    for r in results:
        sev = r["severities"]
        clean = r["clean"]
        out += [f"## {r['dataset']} (seed {r['run'].rsplit('-s', 1)[-1]}, test n = {r['n']})", "",
                (f"Set: {r['corruption_set']['name']} ({r['corruption_set']['modality']}). Clean test: AUC "
                f"{clean['auc']:.3f} [{clean['auc_low']:.3f}, {clean['auc_high']:.3f}], ACC {clean['acc']:.3f}, "
                f"balanced error {1 - clean['balanced_accuracy']:.3f} (AlexNet at 224 px, medmnistc's baseline: "
                f"{_f(ALEXNET_224.get(r['dataset'], {}).get('clean'))}). Corruption scoring took {r['wall_s']:.0f} s "
                f"({len(r['corruptions']) * len(sev)} corrupted test sets); training took {_f(r['train_wall_s'], 0)} "
                f"s."), "",
                "| corruption | family | " + " | ".join(f"AUC s{s}" for s in sev) + " | mean AUC | mean ACC | "
                "balanced error (ours, 28 px) | AlexNet balanced error (224 px, medmnistc) | BE | rBE | "
                "MedMNIST-C paper, ResNet-18 |",
                "|---|---|" + "---|" * len(sev) + "---|---|---|---|---|---|---|"]
        for name, c in r["corruptions"].items():
            aucs = " | ".join(f"{a:.3f}{'*' if hi < 0 else ''}" for a, hi in zip(c["auc"], c["auc_change_high"]))
            out.append(f"| {name} | {c['family']} | {aucs} | {c['mean_auc']:.3f} | {c['mean_acc']:.3f} | "
                       f"{c['balanced_error']:.3f} | {_f(c.get('alexnet_balanced_error'))} | {_f(c.get('be'), 2)} | "
                       f"{_f(c.get('rbe'), 2)} | not checked |")
        m = r["mean"]
        be = [c["be"] for c in r["corruptions"].values() if "be" in c]
        rbe = [c["rbe"] for c in r["corruptions"].values() if c.get("rbe") is not None]
        out.append("| **mean over corruptions** | | " + " | ".join(f"{a:.3f}" for a in m["auc"])
                   + f" | {sum(m['auc']) / len(m['auc']):.3f} | {sum(m['acc']) / len(m['acc']):.3f} | "
                   f"{1 - sum(m['balanced_accuracy']) / len(m['balanced_accuracy']):.3f} | | "
                   f"{_f(sum(be) / len(be) if be else None, 2)} | {_f(sum(rbe) / len(rbe) if rbe else None, 2)} | "
                   f"not checked |")
        out.append("")
    out += [("`*`: AUC lower than clean, the 95% paired bootstrap interval of the change (2,000 replicates) below 0. "
            "Balanced error: 1 - balanced accuracy at the 0.5 threshold, mean over severities 1-5 (MedMNIST-C's "
            "metric). BE = our balanced error / AlexNet's; rBE = (ours - our clean) / (AlexNet's - AlexNet's clean); "
            "below 1 means fewer errors than MedMNIST-C's AlexNet baseline, which was trained and corrupted at "
            "224 px, so the ratio mixes a change of model with a change of resolution. rBE is left out (-) where "
            "AlexNet's corrupted error is not above its clean error (its denominator would be 0 or negative)."),
            "",
            ("MedMNIST-C paper column: the per-dataset ResNet-18 numbers of Di Salvo et al. (2024) were not checked "
            "(the paper's tables could not be read from this environment); no number is given rather than a guess. "
            "Its setting also differs: 224 px images and its own training recipe."),
            "",
            ("Sources: MedMNIST-C, Di Salvo, Doerrich & Ledig, arXiv:2406.17536 (2024), code and baselines in "
            "medmnistc 0.1.0 (Apache-2.0). Data: MedMNIST v2 (CC BY 4.0), Kermany et al., Cell 2018 "
            "(PneumoniaMNIST) and Al-Dhabyani et al., Data in Brief 2020 (BreastMNIST).")]
    return "\n".join(out) + "\n"


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["breastmnist", "pneumoniamnist"])
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0 .. N-1 of each dataset")
    ap.add_argument("--runs", type=Path, default=HERE / "runs" / "corruptions")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "corruptions")
    ap.add_argument("--table-only", action="store_true", help="rewrite the .md from the saved .json")
    args = ap.parse_args()
    if args.table_only:
        saved = json.loads(args.results.with_suffix(".json").read_text())
        args.results.with_suffix(".md").write_text(table(saved["results"], saved["cpu"]))
        return
    cpu = _cpu()
    results = []
    for ds in args.datasets:
        for seed in range(args.seeds):
            results.append(bench(ds, seed, args.runs))
            args.results.with_suffix(".json").write_text(json.dumps({"cpu": cpu, "results": results}, indent=1)
                                                         + "\n")
    args.results.with_suffix(".md").write_text(table(results, cpu))
    print(table(results, cpu))


if __name__ == "__main__":
    main()

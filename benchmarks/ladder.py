"""The transfer ladder on BreastMNIST with a network trained on PneumoniaMNIST: one measured table.

Runs :func:`medclass.ladder.run_ladder` (six rungs: HOG+LBP SVM, scratch, deep-feature SVM, linear probe,
last block, discriminative fine-tuning) on the 28-pixel MedMNIST v2 files and writes
``benchmarks/results/ladder_breastmnist.md`` with the machine, the settings and the data credits. The
runs themselves go to ``benchmarks/runs/ladder`` (ignored by git).

    MEDCLASS_DATA=/path/to/npz python benchmarks/ladder.py [--epochs 15] [--source-epochs 8] [--model resnet9]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from medclass.runs.environment import _cpu_name
from medclass.runs.ladder import format_table, run_ladder

HERE = Path(__file__).resolve().parent

CREDITS = """Data: MedMNIST v2 (Yang et al., Scientific Data 10, 41, 2023; Yang, Shi, Ni, IEEE ISBI 2021), CC BY 4.0,
28x28 files byte-identical to the official release. BreastMNIST is built from the breast ultrasound dataset of
Al-Dhabyani et al., Data in Brief 28, 104863 (2020); PneumoniaMNIST from the paediatric chest X-rays of Kermany
et al., Cell 172(5), 1122-1131 (2018). Both CC BY 4.0."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="breastmnist")
    ap.add_argument("--source", default="pneumoniamnist")
    ap.add_argument("--model", default="resnet9")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--source-epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--out", default=str(HERE / "runs" / "ladder"))
    args = ap.parse_args()
    result = run_ladder(args.dataset, args.source, args.out, epochs=args.epochs, source_epochs=args.source_epochs,
                        model=args.model, seed=args.seed, n_boot=args.n_boot, device="cpu", overwrite=True)
    table = format_table(result)
    print(table)
    n = result["n"]
    text = f"""# Transfer ladder: {args.dataset} (target) with a {args.model} trained on {args.source} (source)

Machine: {_cpu_name() or platform.processor()}, CPU only ({torch.get_num_threads()} torch threads), torch
{torch.__version__}.
Command: `python benchmarks/ladder.py --epochs {args.epochs} --source-epochs {args.source_epochs} --model {args.model}
--seed {args.seed}` (the same as `medclass ladder --dataset {args.dataset} --source {args.source} --model {args.model}
--epochs {args.epochs} --source-epochs {args.source_epochs} --out ...`). 28 px, one seed ({args.seed}), `default` recipe
settings for every network run (AdamW, one-cycle schedule, checkpoint with the best validation AUC);
{args.epochs} epochs per network rung. Splits: train {n['train']}, val {n['val']}, test {n['test']} images.

Every rung made its choices on validation only (network rungs: the epoch; SVM rungs: C from
{{0.01, 0.1, 1, 10, 100}} by validation AUC, the test split passed in as unlabelled features) and was scored once
on test. Intervals: percentile bootstrap over test images, {args.n_boot} replicates. Wall seconds per rung
(training, feature extraction and scoring); the transfer rungs' seconds exclude training the source network,
reported below the table. One seed: differences between rungs smaller than the intervals are not evidence.

{table}

{CREDITS}
"""
    text = text.replace(str(HERE.parent) + "/", "")  # repository-relative paths
    out = HERE / "results" / f"ladder_{args.dataset}.md"
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

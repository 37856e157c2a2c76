"""Prototype: which volume designs fit a 10-minute CPU budget on AdrenalMNIST3D (28³)?

A script, not a test, and standalone: its own minimal training loop over the building blocks of issue 17
(the volume models of ``medclass.models``: 3D CNNs, ACS, 2.5D, slice pooling; ``BatchAugment3D``), reading
``adrenalmnist3d.npz`` with numpy. Only the train and validation splits are read; the test split is not
opened, so nothing here can leak into a later choice. Each design trains ``--epochs`` epochs (AdamW, one-cycle
learning rate, cross-entropy, batch 32) and is scored on validation after every epoch: AUC (of the
positive class's probability) and accuracy (arg-max), as MedMNIST defines them. Seconds per epoch are the
training pass only; the validation pass is timed apart.

The validation split holds 98 volumes (22 positive), so a validation AUC has a standard error of about
0.05: the table ranks designs by cost much more reliably than by accuracy.

Examples::

    python benchmarks/volumes_prototype.py --probe                    # seconds per epoch, from a few batches
    python benchmarks/volumes_prototype.py --epochs 5                 # train every design, write the table
    python benchmarks/volumes_prototype.py --designs cnn3d_small slices_resnet9_attn --epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# OpenMP threads that wait by spinning (libgomp's default) turn two threads on two *shared* cores into a 10-25x
# slowdown whenever another process runs (measured here: cnn3d_small 587 s/epoch spinning, 24 s passive). Must be
# set before torch loads its OpenMP runtime; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from medclass.config import AugmentConfig  # noqa: E402
from medclass.models import count_parameters, create_model  # noqa: E402
from medclass.transforms.augment3d import BatchAugment3D  # noqa: E402

DATA = Path("/work/shared/data/adrenalmnist3d.npz")

# label -> (registered model, options). Widths are chosen for two CPU cores (see the model cards).
DESIGNS: dict[str, tuple[str, dict]] = {
    "cnn3d_small (w8)": ("cnn3d_small", {"width": 8}),
    "resnet10_3d (w16)": ("resnet10_3d", {"width": 16}),
    "resnet18_3d (w16)": ("resnet18_3d", {"width": 16}),
    "resnet9_acs (w16)": ("resnet9_acs", {"width": 16}),
    "resnet18_acs (w64)": ("resnet18_acs", {}),
    "resnet9_25d orthogonal": ("resnet9_25d", {"planes": "orthogonal"}),
    "resnet9_25d mip": ("resnet9_25d", {"planes": "mip"}),
    "resnet18_25d orthogonal": ("resnet18_25d", {"planes": "orthogonal"}),
    "slices_resnet9_mean (w8)": ("slices_resnet9_mean", {"width": 8}),
    "slices_resnet9_max (w8)": ("slices_resnet9_max", {"width": 8}),
    "slices_resnet9_attn (w8)": ("slices_resnet9_attn", {"width": 8}),
}
AUGMENT = AugmentConfig(hflip=False, vflip=False, rotate=10, scale=0.1, translate=0.05)


def load_train_val(path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train and validation volumes as float ``(N, 1, 28, 28, 28)`` in [0, 1] and labels ``(N,)``; never test."""
    with np.load(path) as z:
        return {split: (torch.from_numpy(z[f"{split}_images"][:, None].astype(np.float32) / 255.0),
                        torch.from_numpy(z[f"{split}_labels"][:, 0].astype(np.int64)))
                for split in ("train", "val")}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def train_gflop_per_volume(name: str, options: dict) -> float:
    """Forward + backward GFLOP of one 28³ training volume (PyTorch's FlopCounterMode, batch of 2)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, in_chans=1, input_size=28, **options).train()
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(model(torch.randn(2, 1, 28, 28, 28)), torch.zeros(2, dtype=torch.long)).backward()
    return fc.get_total_flops() / 2 / 1e9


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 64) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        p = torch.cat([torch.softmax(model(x[i:i + batch] * 2 - 1), 1)[:, 1] for i in range(0, len(x), batch)])
    return float(roc_auc_score(y.numpy(), p.numpy())), float(((p > 0.5).long() == y).float().mean())


def train_design(label: str, name: str, options: dict, data: dict, args) -> dict:
    torch.manual_seed(args.seed)
    model = create_model(name, num_classes=2, in_chans=1, input_size=28, **options)
    (x, y), (xv, yv) = data["train"], data["val"]
    steps = -(-len(x) // args.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps, pct_start=0.2)
    augment = BatchAugment3D(AUGMENT) if args.augment else None
    history = []
    for epoch in range(args.epochs):
        g = torch.Generator().manual_seed(args.seed * 1000 + epoch)  # one stream per (seed, epoch)
        order = torch.randperm(len(x), generator=g)
        model.train()
        start, cpu, total = time.perf_counter(), time.process_time(), 0.0
        for i in range(steps):
            idx = order[i * args.batch_size:(i + 1) * args.batch_size]
            xb = x[idx]
            if augment is not None:
                xb = augment(xb, g)
            loss = F.cross_entropy(model(xb * 2 - 1), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        train_s, train_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        auc, acc = evaluate(model, xv, yv)
        history.append({"epoch": epoch + 1, "train_loss": total / len(x), "val_auc": auc, "val_acc": acc,
                        "train_s": train_s, "train_cpu_s": train_cpu, "val_s": time.perf_counter() - start,
                        "val_cpu_s": time.process_time() - cpu, "load": os.getloadavg()[0]})
        print(f"{label:28s} epoch {epoch + 1}: loss {total / len(x):.3f}  val AUC {auc:.3f}  ACC {acc:.3f}  "
              f"{train_s:.0f} s ({train_cpu:.0f} CPU s)", flush=True)
    best = max(history, key=lambda h: h["val_auc"])
    return {"design": label, "model": name, "options": options,
            "params": count_parameters(name, num_classes=2, input_size=28, **options), "history": history,
            "gflop_train": train_gflop_per_volume(name, options),
            "s_per_epoch": float(np.median([h["train_s"] for h in history])),
            "cpu_s_per_epoch": float(np.median([h["train_cpu_s"] for h in history])),
            "val_s": float(np.median([h["val_s"] for h in history])),
            "val_cpu_s": float(np.median([h["val_cpu_s"] for h in history])),
            "load": float(np.mean([h["load"] for h in history])),
            "last": history[-1], "best": best}


def probe(designs: list[str], data: dict, args) -> list[dict]:
    """Seconds per epoch from ``--probe-batches`` training steps (after one warm-up step)."""
    x, y = data["train"]
    steps = -(-len(x) // args.batch_size)
    rows = []
    for label in designs:
        name, options = DESIGNS[label]
        torch.manual_seed(0)
        model = create_model(name, num_classes=2, in_chans=1, input_size=28, **options).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        times, cpus = [], []
        for i in range(args.probe_batches + 1):
            xb, yb = x[i * args.batch_size:(i + 1) * args.batch_size], y[i * args.batch_size:(i + 1) * args.batch_size]
            start, cpu = time.perf_counter(), time.process_time()
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
        s_epoch, cpu_epoch = float(np.median(times[1:])) * steps, float(np.median(cpus[1:])) * steps
        params = count_parameters(name, num_classes=2, input_size=28, **options)
        rows.append({"design": label, "s_per_epoch_est": s_epoch, "cpu_s_per_epoch_est": cpu_epoch, "params": params,
                     "gflop_train": train_gflop_per_volume(name, options)})
        print(f"{label:28s} ~{s_epoch:6.0f} s/epoch, {cpu_epoch:6.0f} CPU s  ({params / 1e6:.2f}M parameters)",
              flush=True)
    return rows


def write_table(results: list[dict], args, path: Path, started: str, load: tuple[float, float],
                skipped: list[dict]) -> None:
    """The markdown table and the .json record; ``load`` is the load average at the start and at the end."""
    lines = [
        "# Volume designs on AdrenalMNIST3D (28³): validation AUC/ACC and CPU cost",
        "",
        f"Prototype for issue 17 (`benchmarks/volumes_prototype.py`), {started}. CPU: {cpu_model()}, "
        f"`torch.set_num_threads({args.threads})`, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, torch "
        f"{torch.__version__}. Shared machine (2 cores, other engineers' jobs running): load average "
        f"{load[0]:.2f} at the start, {load[1]:.2f} at the end, so timings carry that contention.",
        "",
        f"Each design trains {args.epochs} epochs on the 1188 training volumes (AdamW, one-cycle lr {args.lr:g}, "
        f"batch {args.batch_size}, cross-entropy, seed {args.seed}, "
        f"{'augmentation: rotate 10°, zoom 0.1, shift 0.05' if args.augment else 'no augmentation'}), and is "
        f"scored on the 98 validation volumes (22 positive) after every epoch. **The test split was not read.** "
        f"A validation AUC on 22 positives has a standard error of about 0.05, so differences below ~0.1 are "
        f"noise; one seed per design. Always answering 'normal' scores ACC 0.776 on validation. 'Best' picks "
        f"the epoch on the same validation data it reports (optimistic); "
        f"'last' does not.",
        "",
        "Cost: wall-clock seconds per training epoch as measured (inflated by whatever else ran: the load average "
        "during the design is given), and CPU seconds used by this process (threads that wait sleep, so this "
        "counts only work, and depends much less on the other jobs). 'Epochs in 10 min' is 600 s divided by half "
        "the CPU seconds of an epoch plus its validation pass: what two idle cores would give with perfect "
        "parallelism, an upper bound; the wall-clock column is a pessimistic bound.",
        "",
        "| design | params | GFLOP/volume (train) | wall s/epoch | CPU s/epoch | GFLOP per CPU s | load avg "
        "| epochs in 10 min (2 idle cores) | val AUC last | val ACC last | val AUC best (epoch) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        per_epoch = (r["cpu_s_per_epoch"] + r["val_cpu_s"]) / 2
        rate = r["gflop_train"] * 1188 / r["cpu_s_per_epoch"]
        lines.append(f"| {r['design']} | {r['params'] / 1e6:.2f}M | {r['gflop_train']:.2f} | {r['s_per_epoch']:.0f} | "
                     f"{r['cpu_s_per_epoch']:.0f} | {rate:.0f} | {r['load']:.1f} | {int(600 // per_epoch)} | "
                     f"{r['last']['val_auc']:.3f} | {r['last']['val_acc']:.3f} | {r['best']['val_auc']:.3f} "
                     f"({r['best']['epoch']}) |")
    if skipped:
        lines += ["", f"Not trained: estimated (from {args.probe_batches} batches) above {args.max_epoch_s:g} s per "
                      f"epoch on two idle cores (half the CPU seconds; --max-epoch-s), so fewer than "
                      f"{int(600 // args.max_epoch_s)} epochs would fit in 10 minutes:",
                  "", "| design | params | GFLOP/volume (train) | estimated wall s/epoch | estimated CPU s/epoch |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['design']} | {r['params'] / 1e6:.2f}M | {r['gflop_train']:.2f} | {r['s_per_epoch_est']:.0f} | "
                  f"{r['cpu_s_per_epoch_est']:.0f} |" for r in skipped]
    lines += ["", "Validation AUC per epoch:", "", "| design | " + " | ".join(str(e + 1) for e in range(args.epochs))
              + " |", "|---|" + "---:|" * args.epochs]
    for r in results:
        lines.append(f"| {r['design']} | " + " | ".join(f"{h['val_auc']:.3f}" for h in r["history"]) + " |")
    lines += ["", "For reference only (test split, full training: 100 epochs, ResNet width 64; MedMNIST v2, Table 4): "
              "ResNet-18 + 2.5D 0.718 / 0.772, ResNet-18 + 3D 0.827 / 0.721, ResNet-18 + ACS 0.839 / 0.754, "
              "ResNet-50 + 3D 0.828 / 0.745, auto-sklearn 0.828 / 0.802 (AUC / ACC). These are test numbers; the "
              "table above is validation after a few epochs, so the two are not comparable row by row.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    record = {"started": started, "load_start": load[0], "load_end": load[1], "threads": args.threads,
              "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed,
              "augment": args.augment, "max_epoch_s": args.max_epoch_s, "probe_batches": args.probe_batches,
              "results": results, "skipped": skipped}
    path.with_suffix(".json").write_text(json.dumps(record, indent=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--designs", nargs="+", default=list(DESIGNS), help="design labels (default: all)")
    p.add_argument("--epochs", type=int, default=5, help="training epochs per design (default: 5)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size (default: 32)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and batch order (default: 0)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="train without augmentation")
    p.add_argument("--probe", action="store_true", help="only estimate seconds per epoch from a few batches")
    p.add_argument("--probe-batches", type=int, default=3, help="batches timed per design by --probe (default: 3)")
    p.add_argument("--max-epoch-s", type=float, default=None,
                   help="probe every design first and train only those estimated below this many seconds per epoch "
                        "on two idle cores (half the CPU seconds)")
    p.add_argument("--data", type=Path, default=DATA, help=f"the .npz file (default: {DATA})")
    p.add_argument("--out", type=Path, default=HERE / "results" / "volumes_prototype.md",
                   help="the markdown table (a .json beside it)")
    p.add_argument("--table-only", action="store_true", help="rewrite the table from the .json beside --out")
    args = p.parse_args(argv)
    if args.table_only:
        record = json.loads(args.out.with_suffix(".json").read_text())
        for r in record["results"] + record["skipped"]:
            if "gflop_train" not in r:
                name, options = DESIGNS[r["design"]]
                r["gflop_train"] = train_gflop_per_volume(name, options)
        for key in ("epochs", "threads", "lr", "batch_size", "seed", "augment", "max_epoch_s", "probe_batches"):
            setattr(args, key, record[key])
        write_table(record["results"], args, args.out, record["started"],
                    (record["load_start"], record["load_end"]), record["skipped"])
        return 0
    unknown = [d for d in args.designs if d not in DESIGNS]
    if unknown:
        p.error(f"unknown design(s) {unknown}; choose from: {', '.join(DESIGNS)}")
    if not args.data.is_file():
        p.error(f"'{args.data}' does not exist; give --data PATH to adrenalmnist3d.npz")
    torch.set_num_threads(args.threads)
    data = load_train_val(args.data)
    if args.probe:
        probe(args.designs, data, args)
        return 0
    started, load = time.strftime("%Y-%m-%d %H:%M"), os.getloadavg()
    skipped = []
    if args.max_epoch_s:
        skipped = [r for r in probe(args.designs, data, args) if r["cpu_s_per_epoch_est"] / 2 > args.max_epoch_s]
    results = []
    for label in args.designs:
        if any(r["design"] == label for r in skipped):
            continue
        name, options = DESIGNS[label]
        results.append(train_design(label, name, options, data, args))
        # after each design: a partial table survives a stop
        write_table(results, args, args.out, started, (load[0], os.getloadavg()[0]), skipped)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

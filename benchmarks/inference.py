"""Inference speed on a CPU: PyTorch eager against ONNX Runtime, beside the cost of reading one file.

For each model the module timed is what ``medclass export`` writes (:class:`medclass.runs.export.ExportWrapper`:
uint8 ``(N, H, W, C)`` images in, probabilities out, normalisation and softmax included), run either in
PyTorch eager mode (``torch.inference_mode``) or as the exported ONNX graph in ONNX Runtime's CPU provider.
Both get ``--threads`` threads, 2 by default (``torch.set_num_threads(2)``; ORT ``intra_op_num_threads=2``,
``inter_op_num_threads=1``).

- ``latency``: batch of 1, ``--calls`` calls after ``--warmup`` calls (fewer, but at least 20, when they would
  take more than ``--max-seconds``); p50 and p95 in milliseconds.
- ``throughput``: batches of 64, images per second over at least ``--min-seconds`` (and 3 calls).
- ``read``: one file through the run's input pipeline (``InputPipeline.load``: read, window or preset, resize,
  the uint8 image the model takes), median over repeated reads of a real file: a small CT slice from pydicom's
  test data (lung window), a 1955 x 1841 computed radiograph from pydicom-data (uncompressed, and the same
  picture JPEG 2000 compressed; ``xray`` preset: min-max and CLAHE), and that radiograph as a 1024 x 1024 8-bit
  PNG (the size of NIH ChestX-ray14's PNGs).

The models are randomly initialised (speed does not depend on the weights). Every measurement is repeated
``--repeats`` times (each repeat builds, exports and times everything again) and the medians are reported,
with the machine's load average before and after each repeat, since the CI machine is shared.

Usage: ``python benchmarks/inference.py [--repeats 3] [--calls 200]``. Results go to
``benchmarks/results/inference.json`` and ``inference.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pydicom
import torch
from PIL import Image
from pydicom.data import get_testdata_file

from medclass.config import PreprocessConfig, build_config
from medclass.data.pipeline import InputPipeline
from medclass.models import create_model
from medclass.runs.export import ExportWrapper, export_module, random_batch
from medclass.tasks import get_task

# name, model, model options, input side, channels
CASES = [
    ("default (resnet9)", "default", {}, 28, 1),
    ("ResNet-18", "resnet18", {}, 28, 1),
    ("ResNet-50", "resnet50", {}, 28, 1),
    ("ResNet-50", "resnet50", {}, 224, 3),
]
FILES = [  # label, pydicom test file (or the PNG made from it), preset
    ("CT slice 128 x 128 (CT_small.dcm)", "CT_small.dcm", "ct-lung"),
    ("radiograph 1955 x 1841 (RG1_UNCR.dcm)", "RG1_UNCR.dcm", "xray"),
    ("radiograph 1955 x 1841, JPEG 2000 (RG1_J2KR.dcm)", "RG1_J2KR.dcm", "xray"),
    ("radiograph as 1024 x 1024 8-bit PNG", "png", "xray"),
]


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return (f"{fields.get('Model name', '?').strip()} (family {fields.get('CPU family', '?').strip()}, "
                f"{fields.get('CPU(s)', '?').strip()} CPUs)")
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or "unknown"


def _module(model: str, kwargs: dict, size: int, channels: int) -> ExportWrapper:
    if model == "default":  # the default recipe's architecture and options
        m = build_config("default").model
        model, kwargs = m.name, {"width": m.width, "drop_rate": m.dropout}
    torch.manual_seed(0)
    net = create_model(model, num_classes=2, in_chans=channels, input_size=size, **kwargs).eval()
    pipe = InputPipeline(size=size, channels=channels, normalize={"kind": "fixed", "mean": [0.5], "std": [0.5]})
    return ExportWrapper(net, pipe, get_task("binary")).eval()


def _session(data: bytes, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _latency(fn, x, warmup: int, calls: int, max_seconds: float) -> dict:
    for _ in range(warmup):
        fn(x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < calls and (len(times) < 20 or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "calls": len(times)}


def _throughput(fn, x, min_seconds: float) -> float:
    fn(x)  # warm-up
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < min_seconds:
        fn(x)
        n += 1
    return n * len(x) / (time.perf_counter() - t0)


def measure_models(warmup: int, calls: int, min_seconds: float, max_seconds: float, threads: int) -> list[dict]:
    rows = []
    for label, model, kwargs, size, channels in CASES:
        module = _module(model, kwargs, size, channels)
        pipe = InputPipeline(size=size, channels=channels)
        data = export_module(module, "onnx", torch.from_numpy(random_batch(pipe, 2, seed=0)))
        sess = _session(data, threads)

        def run_torch(x, module=module):
            with torch.inference_mode():
                return module(torch.from_numpy(x)).numpy()

        def run_ort(x, sess=sess):
            return sess.run(["probabilities"], {"image": x})[0]

        one, many = random_batch(pipe, 1, seed=1), random_batch(pipe, 64, seed=2)
        assert np.abs(run_torch(many) - run_ort(many)).max() < 1e-4
        row = {"model": label, "input": f"{size} px, {channels} ch", "onnx_bytes": len(data)}
        for engine, fn in (("torch", run_torch), ("onnx", run_ort)):
            row[engine] = {**_latency(fn, one, warmup, calls, max_seconds),
                           "batch64_img_s": _throughput(fn, many, min_seconds)}
        rows.append(row)
        print(f"  {label} {row['input']}: torch {row['torch']['p50_ms']:.2f} ms, onnx {row['onnx']['p50_ms']:.2f} ms "
              f"(batch 1 p50); {row['torch']['batch64_img_s']:.0f} / {row['onnx']['batch64_img_s']:.0f} img/s "
              f"(batch 64)", flush=True)
    return rows


def measure_reads(png: Path, reads: int) -> list[dict]:
    rows = []
    for label, name, preset in FILES:
        path = png if name == "png" else Path(get_testdata_file(name))
        for size in (28, 224):
            pipe = InputPipeline(size=size, channels=1, preprocess=PreprocessConfig(preset=preset))
            pipe.load(path)  # warm-up (imports, file cache)
            times = []
            for _ in range(reads):
                t0 = time.perf_counter()
                pipe.load(path)
                times.append(time.perf_counter() - t0)
            rows.append({"file": label, "preset": preset, "size": size, "bytes": path.stat().st_size,
                         "read_ms": 1000 * statistics.median(times)})
    return rows


def make_png(folder: Path) -> Path:
    ds = pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))
    a = ds.pixel_array.astype(np.float32)
    a = (255 * (a - a.min()) / (a.max() - a.min())).astype(np.uint8)
    path = folder / "radiograph.png"
    Image.fromarray(a).resize((1024, 1024), Image.Resampling.BICUBIC).save(path)
    return path


def _load() -> float:
    return os.getloadavg()[0]


def _median_rows(repeats: list[list[dict]], keys: tuple[str, ...]) -> list[dict]:
    out = []
    for rows in zip(*repeats):
        row = dict(rows[0])
        for key in keys:
            if "." in key:
                a, b = key.split(".")
                row[a] = {**row[a], b: statistics.median(r[a][b] for r in rows)}
            else:
                row[key] = statistics.median(r[key] for r in rows)
        out.append(row)
    return out


def to_markdown(result: dict) -> str:
    env = result["environment"]
    loads = ", ".join(f"{a:.1f} / {b:.1f}" for a, b in zip(result["load_average_before_each_repeat"],
                                                          result["load_average_after_each_repeat"]))
    lines = [
        "# Inference speed: PyTorch eager vs ONNX Runtime (CPU)",
        "",
        f"Made by `benchmarks/inference.py` on {env['cpu']}, {env['threads']} thread(s) for each engine; torch "
        f"{env['torch']}, ONNX Runtime {env['onnxruntime']}, Python {env['python']}. Medians of "
        f"{result['repeats']} repeats; 1-minute load average before / after each repeat: {loads} (the machine is shared "
        f"with other engineers' test runs; a load above 0.5 slows both engines). The timed module is the "
        f"exported graph: uint8 image in, probabilities out (normalisation and softmax included).",
        "",
        "| model | input | torch p50 (ms) | torch p95 (ms) | ONNX p50 (ms) | ONNX p95 (ms) | ONNX/torch p50 | "
        "batch-1 calls (torch / ONNX) | torch batch-64 (img/s) | ONNX batch-64 (img/s) | ONNX/torch img/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["models"]:
        t, o = r["torch"], r["onnx"]
        lines.append(f"| {r['model']} | {r['input']} | {t['p50_ms']:.2f} | {t['p95_ms']:.2f} | {o['p50_ms']:.2f} | "
                     f"{o['p95_ms']:.2f} | {o['p50_ms'] / t['p50_ms']:.2f} | {t['calls']:.0f} / {o['calls']:.0f} | "
                     f"{t['batch64_img_s']:.0f} | "
                     f"{o['batch64_img_s']:.0f} | {o['batch64_img_s'] / t['batch64_img_s']:.2f} |")
    lines += ["", "Reading and preprocessing one file through the input pipeline (`InputPipeline.load`: the uint8 "
              "image the model takes), median of repeated reads:", "",
              "| file | preset | output side (px) | file size (KB) | read + preprocess (ms) |", "|---|---|---|---|---|"]
    for r in result["reads"]:
        lines.append(f"| {r['file']} | {r['preset']} | {r['size']} | {r['bytes'] / 1024:.0f} | {r['read_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and ORT intra-op threads")
    ap.add_argument("--calls", type=int, default=200, help="timed batch-1 calls")
    ap.add_argument("--warmup", type=int, default=10, help="untimed batch-1 calls first")
    ap.add_argument("--max-seconds", type=float, default=60.0,
                    help="longest batch-1 timing: fewer than --calls calls (at least 20) when a call is slow")
    ap.add_argument("--min-seconds", type=float, default=3.0, help="shortest batch-64 timing")
    ap.add_argument("--reads", type=int, default=15, help="timed reads of each file")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "inference.json"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    models, reads, loads, loads_after = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        png = make_png(Path(tmp))
        for i in range(args.repeats):
            loads.append(_load())
            print(f"repeat {i + 1}/{args.repeats} (load average {loads[-1]:.2f})", flush=True)
            models.append(measure_models(args.warmup, args.calls, args.min_seconds, args.max_seconds, args.threads))
            reads.append(measure_reads(png, args.reads))
            loads_after.append(_load())
    keys = tuple(f"{e}.{k}" for e in ("torch", "onnx") for k in ("p50_ms", "p95_ms", "calls", "batch64_img_s"))
    result = {
        "environment": {"cpu": _cpu(), "torch": torch.__version__, "onnxruntime": ort.__version__,
                        "python": platform.python_version(), "threads": args.threads},
        "repeats": args.repeats, "calls": args.calls, "warmup": args.warmup,
        "load_average_before_each_repeat": loads, "load_average_after_each_repeat": loads_after,
        "models": _median_rows(models, keys), "reads": _median_rows(reads, ("read_ms",)),
        "per_repeat": {"models": models, "reads": reads},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

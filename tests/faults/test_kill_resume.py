"""kill -9 at random moments of a training run, and in the middle of checkpoint writes, then resume, over and over:
the run ends with exactly the tensors, history, predictions and byte-identical checkpoint files of a run that was
never interrupted, and no temporary file or lock is left behind."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from medclass.run_folder import RunFolder
from tests.conftest import make_npz

pytestmark = pytest.mark.faults  # the fault-injection tier: `make test-all`

KILLS = 24  # at least 20, half of them inside a checkpoint write

# The child runs the real CLI; with SLOW_WRITES, every atomic write pauses between writing its temporary file and
# renaming it, and says so on stdout, so the parent can kill it in the middle of a write.
_CHILD = """
import os, sys, time
if os.environ.get("SLOW_WRITES"):
    import medclass.utils.io as io
    real = io.os.replace
    def slow(src, dst):
        print("WRITE", dst, flush=True)
        time.sleep(0.3)
        real(src, dst)
    io.os.replace = slow
from medclass.cli.main import main
sys.exit(main(sys.argv[1:]))
"""

_TIMING = {"seconds", "val_seconds", "images_per_s", "data_share"}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", _CHILD, *args]


def _train_args(data: Path, out: Path) -> list[str]:
    return ["train", "--dataset", str(data), "--seed", "5", "--epochs", "6", "--batch-size", "32", "--set",
            "model.width=8", "--set", "train.augment.hflip=true", "--set", "model.dropout=0.1", "--out", str(out),
            "--quiet"]


def _history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in _TIMING} for r in csv.DictReader(f)]


def _episode(data: Path, out: Path, env: dict, at_writes: bool, rng: random.Random, window: float) -> int:
    """Start (or resume) the run again and again, killing each attempt at a random moment (or write), until one
    attempt finishes; return how many kills landed."""
    landed = 0
    while True:
        if RunFolder(out).is_run():
            args = ["train", "--resume", str(out), "--quiet"]
        else:  # killed before the run had a status: start it again
            args = _train_args(data, out) + (["--overwrite"] if out.exists() else [])
        run_env = {**env, **({"SLOW_WRITES": "1"} if at_writes else {})}
        proc = subprocess.Popen(_cmd(*args), env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if at_writes:
            target, seen = rng.randint(1, 8), 0
            for line in proc.stdout:
                seen += line.startswith("WRITE")
                if seen == target:
                    proc.send_signal(signal.SIGKILL)
                    break
        else:
            try:
                proc.wait(timeout=rng.uniform(1.0, window))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
        if proc.returncode == -signal.SIGKILL:
            if RunFolder(out).is_run() and RunFolder(out).read_status()["state"] == "complete":
                return landed  # the kill came after the run had finished (while the process was exiting)
            landed += 1
            continue
        assert proc.returncode == 0, f"{' '.join(args)} failed: {err}"
        return landed


@pytest.mark.parametrize("at_writes", [False, True], ids=["random-moments", "inside-writes"])
def test_kill_9_again_and_again_then_resume_matches_an_uninterrupted_run(tmp_path, at_writes):
    data = make_npz(tmp_path / "toy.npz", n=(480, 96, 96), size=28)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    t0 = time.perf_counter()
    subprocess.run(_cmd(*_train_args(data, tmp_path / "ref")), check=True, env=env, timeout=300,
                   capture_output=True)
    window = time.perf_counter() - t0
    ref = tmp_path / "ref"
    rng = random.Random(1 if at_writes else 0)
    kills, episodes = 0, 0
    while kills < KILLS // 2:
        run = tmp_path / f"killed{episodes}"
        kills += _episode(data, run, env, at_writes, rng, window)
        episodes += 1
        assert RunFolder(run).read_status()["state"] == "complete"
        for name in ("best.safetensors", "last.safetensors"):
            assert (ref / "checkpoints" / name).read_bytes() == (run / "checkpoints" / name).read_bytes(), name
        assert _history(ref) == _history(run)
        assert (ref / "predictions" / "val.csv").read_text() == (run / "predictions" / "val.csv").read_text()
        assert not list(run.rglob("*.tmp")) and not (run / ".lock").exists()

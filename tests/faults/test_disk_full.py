"""A full disk at any write of a training run is one line, never a dead end: the run is then resumed (or, when it
had not started, overwritten), and ends with the weights of a run that never failed."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

import medclass.utils.io as io_mod
from medclass.cli.main import main
from medclass.run_folder import RunFolder
from tests.conftest import make_npz

pytestmark = pytest.mark.faults  # the fault-injection tier: `make test-all`


def _args(data: Path, out: Path) -> list[str]:
    return ["train", "--dataset", str(data), "--epochs", "2", "--batch-size", "16", "--set", "model.width=4",
            "--out", str(out), "--quiet"]


class _FullDiskAt:
    """``os.fsync`` that fails with ENOSPC at its ``k``-th call: every atomic write of medclass calls it once."""

    def __init__(self, k: int):
        self.k, self.calls = k, 0
        self.real = os.fsync

    def __call__(self, fd):
        self.calls += 1
        if self.calls == self.k:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(fd)


def test_enospc_at_every_write_of_a_run_is_one_line_and_recoverable(tmp_path, monkeypatch, capsys):
    data = make_npz(tmp_path / "toy.npz")
    assert main(_args(data, tmp_path / "warm")) == 0  # fills the leakage-hash cache, written once per dataset
    counter = _FullDiskAt(0)
    monkeypatch.setattr(io_mod.os, "fsync", counter)
    assert main(_args(data, tmp_path / "clean")) == 0
    writes = counter.calls
    monkeypatch.setattr(io_mod.os, "fsync", counter.real)
    clean = (tmp_path / "clean" / "checkpoints" / "last.safetensors").read_bytes()
    assert writes >= 12  # config, pipeline, environment, dataset card, status... and per epoch weights, state, history
    capsys.readouterr()
    for k in range(1, writes + 1):
        out = tmp_path / f"run{k}"
        monkeypatch.setattr(io_mod.os, "fsync", _FullDiskAt(k))
        assert main(_args(data, out)) == 2, f"write {k}"
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no space left on the device" in err.lower(), f"write {k}: {err}"
        monkeypatch.setattr(io_mod.os, "fsync", counter.real)
        for p in out.rglob("*.json"):  # whatever was written is whole (atomic writes)
            json.loads(p.read_text())
        if RunFolder(out).is_run():
            assert main(["train", "--resume", str(out), "--quiet"]) == 0, f"write {k}: resume"
        else:  # failed before the run had a status: start it again
            assert main(_args(data, out) + ["--overwrite"]) == 0, f"write {k}: overwrite"
        assert RunFolder(out).read_status()["state"] == "complete"
        assert (out / "checkpoints" / "last.safetensors").read_bytes() == clean, f"write {k}: other weights"
        assert not list(out.rglob("*.tmp")) and not (out / ".lock").exists()
        capsys.readouterr()


def test_enospc_while_evaluating_leaves_the_run_as_it_was(tmp_path, monkeypatch, capsys):
    data = make_npz(tmp_path / "toy.npz")
    run = tmp_path / "run"
    assert main(_args(data, run)) == 0
    monkeypatch.setattr(io_mod.os, "fsync", _FullDiskAt(1))
    assert main(["evaluate", str(run)]) == 2
    assert "no space left" in capsys.readouterr().err.lower()
    assert not (run / "metrics" / "test.json").exists() and not list(run.rglob("*.tmp"))


def test_enospc_when_taking_the_lock(tmp_path, monkeypatch, capsys):
    data = make_npz(tmp_path / "toy.npz")
    real_open = os.open

    def full(path, flags, *a, **k):
        if flags & os.O_CREAT and str(path).endswith(".lock"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", full)
    assert main(_args(data, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "no space left" in err.lower() and len(err.strip().splitlines()) == 1
    monkeypatch.setattr(os, "open", real_open)
    assert main(_args(data, tmp_path / "run") + ["--overwrite"]) == 0

"""One writer per run folder: a second process that would write to a folder in use is refused with the owner named;
a lock left by a killed process is taken over; a read-only folder is a one-line error."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medclass.cli.main import main
from medclass.errors import RunFolderError
from medclass.run_folder import RunFolder
from medclass.runs import evaluate_run, train
from tests.conftest import fast_config, make_npz

pytestmark = pytest.mark.faults  # the fault-injection tier: `make test-all`


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("runs")
    return train(fast_config(make_npz(tmp / "toy.npz"), epochs=2), tmp / "run").path


_HOLD = """
import sys, time
from medclass.run_folder import RunFolder
with RunFolder(sys.argv[1]).lock(sys.argv[2]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def _holder(folder: Path, purpose: str, seconds: float = 60) -> subprocess.Popen:
    """Another process holding the folder's lock (as a training run would)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), purpose, str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.parametrize("command", ["train-overwrite", "resume", "evaluate", "report", "explain", "cv", "ensemble"])
def test_every_writer_is_refused_while_another_process_writes(finished, tmp_path, command, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    toy = tmp_path / "toy.npz"
    make_npz(toy)
    holder = _holder(run, "train")
    try:
        args = {"train-overwrite": ["train", "--dataset", str(toy), "--epochs", "1", "--set", "model.width=4",
                                    "--out", str(run), "--overwrite", "--quiet"],
                "resume": ["train", "--resume", str(run)],
                "evaluate": ["evaluate", str(run)],
                "report": ["report", str(run)],
                "explain": ["explain", str(run), "--filters"],
                "cv": ["cv", "--dataset", str(toy), "--folds", "2", "--out", str(tmp_path / "cv"), "--quiet"],
                "ensemble": ["ensemble", str(finished), str(finished), "--out", str(run)]}[command]
        if command == "cv":  # a cross-validation folder being written by another process
            (tmp_path / "cv").mkdir()
            holder.kill()
            holder = _holder(tmp_path / "cv", "cv")
        if command == "ensemble":  # an ensemble folder being written by another process
            (tmp_path / "ens").mkdir()
            holder.kill()
            holder = _holder(tmp_path / "ens", "ensemble")
            other = tmp_path / "other"
            shutil.copytree(finished, other)
            args = ["ensemble", str(finished), str(other), "--out", str(tmp_path / "ens")]
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"process {holder.pid} on this machine is running `" in err and "is in use" in err
    finally:
        holder.kill()
        holder.wait()
    # nothing of the refused command is left: the run is intact and still complete
    assert RunFolder(run).read_status()["state"] == "complete"


def test_a_killed_owners_lock_is_taken_over_and_its_temp_files_removed(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    holder = _holder(run, "evaluate")
    holder.kill()
    holder.wait()
    assert (run / ".lock").is_file()  # left behind by kill -9
    leftover = run / "metrics" / ".test.json.abc123.tmp"  # a write the killed process never finished
    leftover.parent.mkdir(exist_ok=True)
    leftover.write_text("{")
    evaluate_run(run, "test")
    assert not (run / ".lock").exists() and not leftover.exists()


def test_a_lock_held_on_another_host_is_refused_with_a_way_out(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / ".lock").write_text(json.dumps({"pid": 1, "host": "gpu-node-7", "purpose": "train", "since": "now",
                                           "token": "x"}))
    with pytest.raises(RunFolderError, match=r"process 1 on host 'gpu-node-7' is running `train`.*delete"):
        evaluate_run(run, "test")


def test_status_of_a_killed_run_reads_interrupted(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    st = json.loads((run / "status.json").read_text())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    st.update(state="running", owner={"pid": proc.pid, "host": socket.gethostname(), "start": None})
    (run / "status.json").write_text(json.dumps(st))
    assert RunFolder(run).read_status()["state"] == "interrupted"
    st["owner"]["pid"] = os.getpid()  # a live owner: still running
    (run / "status.json").write_text(json.dumps(st))
    assert RunFolder(run).read_status()["state"] == "running"


def test_read_only_run_folder_is_one_line(finished, tmp_path, capsys, monkeypatch):
    """A read-only file system (simulated where the lock is created: root ignores file modes) is one line."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    real_open = os.open

    def read_only(path, flags, *a, **k):
        if str(path).endswith(".lock") and flags & os.O_CREAT:
            raise OSError(30, "Read-only file system", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "is read-only (Read-only file system), so evaluate --split test cannot write to it" in err
    png = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(png)
    assert main(["predict", str(run), str(png)]) == 0  # predict writes nothing into the run: it works

"""Damaged checkpoints and resume states are refused with the file named, never scored or resumed silently; identical
runs write byte-identical checkpoints."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medclass.cli.main import main
from medclass.errors import CheckpointError
from medclass.runs import evaluate_run, load_run, resume, train
from medclass.training.state import load_state, state_bytes
from tests.conftest import fast_config

pytestmark = pytest.mark.faults  # the fault-injection tier: `make test-all`


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    from tests.conftest import make_npz

    tmp = tmp_path_factory.mktemp("runs")
    data = make_npz(tmp / "toy.npz")
    return train(fast_config(data, epochs=3), tmp / "run").path


def _flip(path: Path, n: int, seed: int, region: str = "data") -> None:
    """Flip ``n`` random bytes of the tensor data (or anywhere) of a file."""
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[:8], "little") + 8 if region == "data" else 0
    rng = np.random.default_rng(seed)
    for i in rng.choice(np.arange(header, len(data)), size=n, replace=False):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip64", "flip1", "truncate", "header"])
def test_a_damaged_best_checkpoint_is_named_by_evaluate_predict_and_load(finished, tmp_path, damage, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    best = run / "checkpoints" / "best.safetensors"
    if damage == "truncate":
        best.write_bytes(best.read_bytes()[: best.stat().st_size - 100])
    elif damage == "header":
        _flip(best, 3, 0, region="file")
    else:
        _flip(best, 64 if damage == "flip64" else 1, 1)
    with pytest.raises(CheckpointError, match=f"'{best}' is corrupted or truncated"):
        load_run(run)
    with pytest.raises(CheckpointError, match="best.safetensors"):
        evaluate_run(run, "test")
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "best.safetensors" in err and "corrupted" in err


@pytest.mark.parametrize("damage", ["flip64", "truncate"])
def test_a_damaged_resume_state_is_named_not_resumed_into_nan(finished, tmp_path, damage, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    status = json.loads((run / "status.json").read_text())
    status["state"] = "interrupted"  # as if killed after epoch 3 of 5
    (run / "status.json").write_text(json.dumps(status))
    state = run / "checkpoints" / "last_state.pt"
    data = state.read_bytes()
    if damage == "truncate":
        state.write_bytes(data[: len(data) // 2])
    else:
        buf = bytearray(data)
        for i in np.random.default_rng(2).choice(np.arange(100, len(buf) - 200), size=64, replace=False):
            buf[i] ^= 0xFF
        state.write_bytes(bytes(buf))
    with pytest.raises(CheckpointError, match=f"Resume state '{state}' is corrupted or truncated"):
        resume(run)
    assert main(["train", "--resume", str(run)]) == 2
    assert "last_state.pt" in capsys.readouterr().err


def test_identical_runs_write_byte_identical_checkpoints_and_record_their_hashes(tmp_path):
    from tests.conftest import make_npz

    data = make_npz(tmp_path / "toy.npz")
    a = train(fast_config(data, epochs=2), tmp_path / "a").path
    b = train(fast_config(data, epochs=2), tmp_path / "b").path
    recorded = json.loads((a / "status.json").read_text())["sha256"]
    for name in ("best.safetensors", "last.safetensors"):
        fa, fb = (a / "checkpoints" / name).read_bytes(), (b / "checkpoints" / name).read_bytes()
        assert fa == fb, f"{name} differs between identical runs"
        assert recorded[f"checkpoints/{name}"] == hashlib.sha256(fa).hexdigest()
    state = (a / "checkpoints" / "last_state.pt").read_bytes()
    assert recorded["checkpoints/last_state.pt"] == hashlib.sha256(state).hexdigest()
    # the resume state also holds the history, whose timing columns differ between runs; all else is equal
    timing = {"seconds", "val_seconds", "images_per_s", "data_share"}
    sa, sb = (load_state(p / "checkpoints" / "last_state.pt") for p in (a, b))
    for s in (sa, sb):
        s["history"] = [{k: v for k, v in r.items() if k not in timing} for r in s["history"]]
    assert state_bytes(sa) == state_bytes(sb)

import io
import pickle

import pytest
import torch

from medclass.errors import CheckpointError
from medclass.training.checkpoint import load_state, load_weights, read_weights_metadata, save_state, save_weights


def test_weights_round_trip_with_metadata(tmp_path):
    sd = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    save_weights(tmp_path / "w.safetensors", sd, {"model": "resnet9", "labels": ["x", "y"], "epoch": 3})
    got, meta = load_weights(tmp_path / "w.safetensors")
    assert torch.equal(got["a"], sd["a"]) and torch.equal(got["b"], sd["b"])
    assert meta == {"model": "resnet9", "labels": ["x", "y"], "epoch": 3}
    assert read_weights_metadata(tmp_path / "w.safetensors")["epoch"] == 3


def test_channels_last_weights_are_saved(tmp_path):
    conv = torch.nn.Conv2d(2, 4, 3).to(memory_format=torch.channels_last)
    save_weights(tmp_path / "c.safetensors", conv.state_dict(), {})
    got, _ = load_weights(tmp_path / "c.safetensors")
    assert torch.equal(got["weight"], conv.weight)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_weights_give_clear_error(tmp_path, damage):
    p = tmp_path / "w.safetensors"
    save_weights(p, {"a": torch.randn(100, 100)}, {"m": 1})
    data = p.read_bytes()
    p.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00" * 64 + data[64:], "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_weights(p)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(tmp_path / "none.safetensors")


def test_state_round_trip_and_damage(tmp_path):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.randn(3))], lr=0.1)
    state = {"epoch": 2, "optimizer": opt.state_dict(), "history": [{"val_auc": 0.5}], "x": None}
    save_state(tmp_path / "s.pt", state)
    assert load_state(tmp_path / "s.pt")["history"] == [{"val_auc": 0.5}]
    data = (tmp_path / "s.pt").read_bytes()
    (tmp_path / "s.pt").write_bytes(data[:100])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_state(tmp_path / "s.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_loading_state_never_runs_code(tmp_path, capsys):
    buf = io.BytesIO()
    torch.save({"payload": _Evil()}, buf, pickle_module=pickle)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError):
        load_state(tmp_path / "evil.pt")
    assert "this must never run" not in capsys.readouterr().out

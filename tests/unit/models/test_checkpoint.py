import pytest
import torch

from medclass.errors import CheckpointError
from medclass.models.checkpoint import load_weights, read_weights_metadata, save_weights


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

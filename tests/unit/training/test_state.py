import io
import pickle

import pytest
import torch

from medclass.errors import CheckpointError
from medclass.training.state import load_state, save_state


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

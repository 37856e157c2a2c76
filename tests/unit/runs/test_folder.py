import pytest

from medclass.errors import RunFolderError
from medclass.runs import RunFolder


def test_create_status_and_refusals(tmp_path):
    f = RunFolder(tmp_path / "r").create()
    assert f.path.is_dir() and not f.is_run()
    f.write_status("running", epochs=3)
    f.config.write_text("seed: 0\n")
    assert f.is_run() and f.read_status()["state"] == "running"
    with pytest.raises(RunFolderError, match="has not finished training .*status: running.*--resume"):
        f.require_complete()
    f.write_status("complete")
    assert f.require_complete() is f and f.read_status()["epochs"] == 3  # earlier fields kept
    with pytest.raises(ValueError):
        f.write_status("done")
    with pytest.raises(RunFolderError, match="already exists"):
        RunFolder(f.path).create()


def test_history_round_trip_with_new_columns(tmp_path):
    f = RunFolder(tmp_path).create()
    f.write_history([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "best_epoch": 2}])
    rows = f.read_history()
    assert rows == [{"epoch": "1", "loss": "0.5", "best_epoch": ""}, {"epoch": "2", "loss": "0.25", "best_epoch": "2"}]


def test_output_path_is_a_file(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        RunFolder(tmp_path / "x").create()

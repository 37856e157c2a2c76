"""The run folder: where one training run keeps everything, and how it is created and read back.

::

    runs/b0/
      config.yaml            the fully resolved RunConfig
      environment.json       versions, seed, git commit, device, command line
      status.json            {"state": "running" | "interrupted" | "failed" | "complete", ...}
      dataset.json           the dataset card (name, task, labels, split counts, licence, citation)
      history.csv            one row per epoch
      checkpoints/best.safetensors   weights chosen on validation AUC (+ model and data contract)
      checkpoints/last.safetensors   weights after the last completed epoch
      checkpoints/last_state.pt      optimiser, scheduler, callbacks, history: what --resume needs
      metrics/<split>.json   written by evaluation
      predictions/<split>.csv

Every file is written atomically. ``status.json`` says ``complete`` only after the best checkpoint and
the validation metrics exist, so an interrupted run never looks finished.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..errors import RunFolderError
from ..utils.io import atomic_write_json, atomic_write_text, read_json

__all__ = ["RunFolder"]

STATES = ("running", "interrupted", "failed", "complete")


class RunFolder:
    """Paths and atomic reads/writes of one run folder. It never trains."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # paths
    config = property(lambda self: self.path / "config.yaml")
    environment = property(lambda self: self.path / "environment.json")
    status_file = property(lambda self: self.path / "status.json")
    dataset_card = property(lambda self: self.path / "dataset.json")
    history = property(lambda self: self.path / "history.csv")
    checkpoints = property(lambda self: self.path / "checkpoints")
    best_weights = property(lambda self: self.path / "checkpoints" / "best.safetensors")
    last_weights = property(lambda self: self.path / "checkpoints" / "last.safetensors")
    last_state = property(lambda self: self.path / "checkpoints" / "last_state.pt")

    def metrics(self, split: str) -> Path:
        return self.path / "metrics" / f"{split}.json"

    def predictions(self, split: str) -> Path:
        return self.path / "predictions" / f"{split}.csv"

    def __repr__(self) -> str:
        return f"RunFolder('{self.path}')"

    # creation ----------------------------------------------------------------------------------

    def is_run(self) -> bool:
        return self.status_file.is_file() and self.config.is_file()

    def create(self, overwrite: bool = False) -> RunFolder:
        """Make the folder for a new run; refuse an existing one unless ``overwrite`` (then empty it)."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise RunFolderError(f"Output path '{p}' exists and is a file, not a folder. Choose another --out.")
        if p.is_dir() and any(p.iterdir()):
            if not overwrite:
                raise RunFolderError(
                    f"Run folder '{p}' already exists. Use --resume to continue it, --overwrite to replace it, "
                    f"or choose another --out."
                )
            if not self.is_run():
                raise RunFolderError(
                    f"Refusing to overwrite '{p}': it is not empty and is not a medclass run folder "
                    f"(no status.json and config.yaml). Choose another --out."
                )
            shutil.rmtree(p)
        try:
            p.mkdir(parents=True, exist_ok=True)
            probe = p / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise RunFolderError(
                f"Cannot write to output folder '{p}' ({e.strerror or e}). Choose a folder you can write to with --out."
            ) from None
        return self

    def require_run(self, purpose: str = "use") -> RunFolder:
        """Raise unless this is an existing run folder."""
        if not self.path.is_dir():
            raise RunFolderError(f"Run folder '{self.path}' does not exist.")
        if not self.is_run():
            raise RunFolderError(
                f"'{self.path}' is not a medclass run folder (it has no status.json and config.yaml), "
                f"so there is nothing to {purpose}. Pass the --out folder of a `medclass train` run."
            )
        return self

    def require_complete(self) -> RunFolder:
        self.require_run("load")
        st = self.read_status()
        if st.get("state") != "complete":
            raise RunFolderError(
                f"Run '{self.path}' has not finished training (status: {st.get('state')}, "
                f"{st.get('epochs_completed', 0)} of {st.get('epochs', '?')} epochs). "
                f"Continue it with: medclass train --resume {self.path}"
            )
        return self

    # status ------------------------------------------------------------------------------------

    def write_status(self, state: str, **fields: Any) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        prev = self.read_status() if self.status_file.is_file() else {}
        prev.update(fields, state=state, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        atomic_write_json(self.status_file, prev)

    def read_status(self) -> dict[str, Any]:
        try:
            return read_json(self.status_file)
        except (OSError, ValueError) as e:
            raise RunFolderError(f"'{self.status_file}' is unreadable ({e}).") from None

    # history -----------------------------------------------------------------------------------

    def write_history(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        cols = list(records[0])
        for r in records[1:]:
            cols += [k for k in r if k not in cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in records:
            w.writerow({k: _fmt(r.get(k)) for k in cols})
        atomic_write_text(self.history, buf.getvalue())

    def read_history(self) -> list[dict[str, str]]:
        if not self.history.is_file():
            return []
        with open(self.history, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v

"""The run folder format: where one training run keeps everything, read and written without any workflow.

::

    runs/b0/
      config.yaml            the fully resolved RunConfig
      preprocessing.json     the input pipeline: how a file becomes the network's input (medclass.data.pipeline)
      environment.json       versions, seed, git commit, device, command line
      status.json            {"state": "running" | "interrupted" | "failed" | "pruned" | "complete",
                              "owner": {...}, ...}
      dataset.json           the dataset card (name, task, labels, split counts, licence, citation)
      history.csv            one row per epoch
      checkpoints/best.safetensors   weights chosen on validation (+ model and data contract, own SHA-256)
      checkpoints/last.safetensors   weights after the last completed epoch
      checkpoints/last_state.pt      optimiser, scheduler, callbacks, history: what --resume needs
      metrics/<split>.json   written by evaluation
      predictions/<split>.csv
      .lock                  while a process writes to the folder: its pid, host and purpose

This module is the bottom layer every workflow and the reports share: it knows the layout, the status file,
the lock, the predictions CSV and how the kept checkpoint was chosen, and imports nothing that trains.

Every file is written atomically (:mod:`medclass.utils.io`). ``status.json`` says ``complete`` only after the
best checkpoint and the validation metrics exist, so an interrupted run never looks finished; a run whose
status still says ``running`` but whose owning process is gone reads as ``interrupted``
(:meth:`RunFolder.read_status`). A writer holds the folder's lock (:meth:`RunFolder.lock`): a second process
that would write to the same folder is refused with the owner named, and a lock left by a killed process is
detected (same host, process gone) and taken over.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .config import RunConfig, config_from_dict, load_yaml, replace
from .errors import DataError, RunFolderError
from .utils.io import atomic_write_json, atomic_write_text, read_json

__all__ = ["RunFolder", "STATES", "load_run_config", "write_predictions", "read_predictions",
           "read_predictions_with_meta", "checkpoint_rule", "checkpoint_rule_record", "checkpoint_rule_text"]

log = logging.getLogger(__name__)

# pruned: stopped on purpose before its planned epochs by a model search (``medclass auto``'s successive halving);
# its checkpoints are valid, but it is not a finished run (``--resume`` continues it like an interrupted one)
STATES = ("running", "interrupted", "failed", "pruned", "complete")
LOCK_NAME = ".lock"


class RunFolder:
    """Paths and atomic reads/writes of one run folder. It never trains."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # paths
    config = property(lambda self: self.path / "config.yaml")
    preprocessing = property(lambda self: self.path / "preprocessing.json")
    environment = property(lambda self: self.path / "environment.json")
    status_file = property(lambda self: self.path / "status.json")
    dataset_card = property(lambda self: self.path / "dataset.json")
    history = property(lambda self: self.path / "history.csv")
    checkpoints = property(lambda self: self.path / "checkpoints")
    best_weights = property(lambda self: self.path / "checkpoints" / "best.safetensors")
    last_weights = property(lambda self: self.path / "checkpoints" / "last.safetensors")
    last_state = property(lambda self: self.path / "checkpoints" / "last_state.pt")
    lock_file = property(lambda self: self.path / LOCK_NAME)

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
        """Make the folder for a new run; refuse an existing one unless ``overwrite`` (then empty it).

        Call it while holding :meth:`lock` when overwriting: the lock file is kept, everything else goes.
        A folder left half-made by a failed start (no ``status.json`` yet, only files medclass writes first)
        may be overwritten too, so a crash at start-up (a full disk) is never a dead end.
        """
        p = self.path
        if p.exists() and not p.is_dir():
            raise RunFolderError(f"Output path '{p}' exists and is a file, not a folder. Choose another --out.")
        entries = [e for e in p.iterdir() if e.name != LOCK_NAME] if p.is_dir() else []
        if entries:
            if not overwrite:
                raise RunFolderError(
                    f"Run folder '{p}' already exists. Use --resume to continue it, --overwrite to replace it, "
                    f"or choose another --out."
                )
            if not (self.is_run() or self.is_half_made()):
                raise RunFolderError(
                    f"Refusing to overwrite '{p}': it is not empty and is not a medclass run folder "
                    f"(no status.json and config.yaml). Choose another --out."
                )
            for e in entries:
                shutil.rmtree(e) if e.is_dir() and not e.is_symlink() else e.unlink()
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

    def is_half_made(self) -> bool:
        """A folder a start-up left unfinished: no status yet, and nothing but files medclass writes first."""
        if self.status_file.is_file() or not self.config.is_file():
            return False
        first = {"config.yaml", "preprocessing.json", "environment.json", "dataset.json", "split.csv",
                 "bad_rows.csv", "leakage.json", LOCK_NAME, ".write-test"}
        return all(e.name in first or (e.name.startswith(".") and e.name.endswith(".tmp")) for e in self.path.iterdir())

    def require_run(self, purpose: str = "use") -> RunFolder:
        """Raise unless this is an existing run folder."""
        if not self.path.is_dir():
            raise RunFolderError(f"Run folder '{self.path}' does not exist.")
        if not self.is_run():
            if self.is_half_made():
                raise RunFolderError(
                    f"'{self.path}' was left half-made by a training run that failed while starting (no "
                    f"status.json), so there is nothing to {purpose}. Start it again with --overwrite."
                )
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
        """Update ``status.json``; a ``running`` status records this process as its owner (pid, host)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        prev = self._read_status_file() if self.status_file.is_file() else {}
        prev.update(fields, state=state, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        if state == "running":
            prev["owner"] = _this_process()
        atomic_write_json(self.status_file, prev)

    def read_status(self) -> dict[str, Any]:
        """``status.json``; a ``running`` run whose owner process is gone (killed) reads as ``interrupted``."""
        st = self._read_status_file()
        if st.get("state") == "running" and _owner_is_dead(st.get("owner")):
            st = {**st, "state": "interrupted", "interrupted_because": "the process that was training it is gone "
                                                                       "(killed, or the machine restarted)"}
        return st

    def _read_status_file(self) -> dict[str, Any]:
        try:
            return read_json(self.status_file)
        except (OSError, ValueError) as e:
            raise RunFolderError(f"'{self.status_file}' is unreadable ({e}).") from None

    # lock --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, purpose: str) -> Iterator[RunFolder]:
        """Hold the folder's exclusive lock while writing to it (train, resume, evaluate, report, explain, ...).

        The lock is a file created with ``O_EXCL`` holding the owner's pid, host, process start time and
        purpose; it is removed on exit. A lock whose owner is gone (same host, no such process, or the pid now
        belongs to a later process) is stale and taken over with a warning; temporary files left by a killed
        writer are removed then. A live owner, or one on another host, is a :class:`RunFolderError`.
        """
        if not _acquire(self, purpose):  # this process holds it already (train scoring its val split)
            yield self
            return
        try:
            _remove_stale_temp_files(self.path)
            yield self
        finally:
            with contextlib.suppress(OSError):
                if _read_lock(self.lock_file).get("token") == _token():
                    self.lock_file.unlink()

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


# --- process identity and the lock -------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid from the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _this_process() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "start": _start_time(os.getpid())}


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    now = _start_time(pid)
    return start is None or now is None or now == start


def _owner_is_dead(owner: dict[str, Any] | None) -> bool:
    """True only when the owner is known to be gone: on this host, and its pid is dead or reused."""
    if not owner or owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    return not _alive(owner["pid"], owner.get("start"))


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _acquire(folder: RunFolder, purpose: str) -> bool:
    """Take the lock; False when this process holds it already (nothing to release then)."""
    path = folder.lock_file
    if not folder.path.is_dir():
        raise RunFolderError(f"Run folder '{folder.path}' does not exist.")
    record = {**_this_process(), "purpose": purpose, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "token": _token()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            held = _read_lock(path)
            if held.get("token") == record["token"]:
                return False
            if not held:  # being written this instant, or empty after a crash mid-write
                time.sleep(0.05)
                held = _read_lock(path)
                if not held:
                    age = time.time() - path.stat().st_mtime if path.exists() else 0
                    if age > 5:
                        log.warning("removing an empty lock file in %s", folder.path)
                        path.unlink(missing_ok=True)
                    continue
            if _owner_is_dead(held):
                log.warning("%s: taking over a stale lock of process %s (%s), which is gone", folder.path,
                            held.get("pid"), held.get("purpose"))
                path.unlink(missing_ok=True)
                continue
            where = "this machine" if held.get("host") == socket.gethostname() else f"host {held.get('host')!r}"
            raise RunFolderError(
                f"Run folder '{folder.path}' is in use: process {held.get('pid')} on {where} is running "
                f"`{held.get('purpose')}` on it (since {held.get('since')}). Wait for it to finish, or use another "
                f"folder. If that process is certainly gone, delete '{path}'.")
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                raise RunFolderError(f"Run folder '{folder.path}' is read-only ({e.strerror}), so {purpose} cannot "
                                     f"write to it. Copy the folder somewhere writable, or make it writable.") from None
            if e.errno == errno.ENOSPC:
                raise RunFolderError(f"No space left on the device holding '{folder.path}'; {purpose} cannot "
                                     f"start. Free some space and try again.") from None
            raise
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f)
            return True
    raise RunFolderError(f"Could not take the lock '{path}' after three tries; delete it if no medclass process "
                         f"is using the folder.")


def _remove_stale_temp_files(root: Path) -> None:
    """Temporary files of atomic writes (``.<name>.<random>.tmp``) whose writer was killed."""
    if not root.is_dir():
        return
    for p in [root, *(d for d in root.iterdir() if d.is_dir())]:
        for tmp in p.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                log.info("removed %s, left by an interrupted write", tmp)


# --- configuration of a run --------------------------------------------------------------------------


def load_run_config(folder: RunFolder | str | os.PathLike, data_dir: str | None = None) -> RunConfig:
    """The saved ``config.yaml`` of a run, with ``data.data_dir`` replaced when the data moved (``data_dir``)."""
    folder = folder if isinstance(folder, RunFolder) else RunFolder(folder)
    cfg = config_from_dict(load_yaml(folder.config))
    if data_dir is not None:
        cfg = replace(cfg, data=replace(cfg.data, data_dir=data_dir))
    return cfg


# --- how the kept checkpoint was chosen --------------------------------------------------------------


def checkpoint_rule(cfg: RunConfig) -> str:
    """``best`` or ``last``: which epoch's weights ``checkpoints/best.safetensors`` keeps (``train.checkpoint``)."""
    if cfg.train.checkpoint == "auto":
        return "last" if cfg.data.refit else "best"
    return cfg.train.checkpoint


def checkpoint_rule_record(cfg: RunConfig) -> dict[str, Any]:
    """What the kept checkpoint's metadata records about the rule (read back by :func:`checkpoint_rule_text`)."""
    if checkpoint_rule(cfg) == "last":
        return {"chosen_by": "last_epoch"}
    rule: dict[str, Any] = {"tolerance_se": cfg.train.checkpoint_tolerance} if cfg.train.checkpoint_tolerance else {}
    return {**rule, "guard": "uninformative_loss"} if cfg.train.checkpoint_guard else rule


def checkpoint_rule_text(checkpoint: dict[str, Any]) -> str:
    """How a run's kept checkpoint was chosen, in words, from ``metrics[...]["checkpoint"]``."""
    by = checkpoint.get("chosen_by", "val_auc")
    if by == "last_epoch":
        return "the last epoch (the validation split was training data)"
    text = "chosen by " + {"val_auc": "validation AUC", "val_r2": "validation R²"}.get(by, str(by))
    k = checkpoint.get("tolerance_se")
    if k:
        text += f" (the latest epoch within {k:g} standard error{'s' if k != 1 else ''} of the highest)"
    if checkpoint.get("guard") == "uninformative_loss":
        text += "; epochs whose validation loss was worse than uniform probabilities were passed over"
    return text


# --- predictions files -------------------------------------------------------------------------------
# One CSV row per image: ``index``, ``y`` (or ``y_0 .. y_{L-1}`` for multi-label; absent when the labels are
# unknown, as for new images), ``p_0 .. p_{K-1}`` and any per-image columns (path, patient id, metadata,
# the predicted class). `medclass predict` writes the same columns, so its output can be graded with
# `medclass evaluate --predictions` as soon as a ``y`` column is added.


def write_predictions(path: str | os.PathLike, labels: np.ndarray | None, probs: np.ndarray,
                      extra: dict[str, Any] | None = None) -> None:
    """Write the predictions CSV; ``extra`` adds per-image columns (file path, patient id, metadata)."""
    n = len(probs)
    extra = {k: v for k, v in (extra or {}).items() if len(v) == n}
    y2 = None if labels is None else np.asarray(labels).reshape(n, -1)
    y_cols = [] if labels is None else (["y"] if np.asarray(labels).ndim == 1 else
                                        [f"y_{i}" for i in range(y2.shape[1])])
    p_cols = [f"p_{i}" for i in range(probs.shape[1])]
    own = {"index", *y_cols, *p_cols}  # a manifest column of the same name keeps its values, renamed
    extra = {(f"manifest_{k}" if k in own else k): v for k, v in extra.items()}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", *y_cols, *p_cols, *extra])
    for i in range(n):
        w.writerow([str(i), *([] if y2 is None else map(str, y2[i].tolist())), *(f"{v:.8g}" for v in probs[i]),
                    *(str(v[i]) for v in extra.values())])
    atomic_write_text(path, buf.getvalue())


def read_predictions(path: str | os.PathLike, extra_columns: tuple[str, ...] = (), *, values: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(labels, probs, extra)`` from a predictions CSV.

    Labels are the ``y`` column (or ``y_0 .. y_{L-1}``; -1 marks a missing label), probabilities the
    ``p_*`` columns in order; ``extra`` holds the requested other columns (patient id, site...) as strings.
    With ``values`` (regression) labels and predictions are real numbers, not classes and probabilities.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Predictions file '{path}' does not exist.")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0]) if rows else []
    y_cols = [c for c in header if c == "y" or (c.startswith("y_") and c[2:].isdigit())]
    p_cols = sorted((c for c in header if c.startswith("p_") and c[2:].isdigit()), key=lambda c: int(c[2:]))
    missing = [c for c in extra_columns if c not in header]
    if not rows or not y_cols or not p_cols or missing:
        hint = (" It looks like `medclass predict` output without labels: add a 'y' column with each image's true "
                "class index." if rows and p_cols and not y_cols else "")
        raise DataError(f"'{path}' must have a header with a 'y' (or y_0, y_1, ...) column and p_0, p_1, ... "
                        f"probability columns{'; missing columns: ' + ', '.join(missing) if missing else ''}. "
                        f"Found: {', '.join(header) or 'no rows'}.{hint}")
    try:
        labels = np.array([[float(r[c]) if values else int(float(r[c])) for c in y_cols] for r in rows],
                          dtype=np.float64 if values else np.int64)
        probs = np.array([[float(r[c]) for c in p_cols] for r in rows], dtype=float)
    except ValueError as e:
        bad = next(i for i, r in enumerate(rows, start=2)
                   if not all(_is_number(r[c]) for c in (*y_cols, *p_cols)))
        raise DataError(f"'{path}', row {bad}: {e}. Labels must be integers and probabilities numbers.") from None
    if not np.isfinite(probs).all() or (not values and (probs.min() < 0 or probs.max() > 1)):
        raise DataError(f"'{path}': probabilities must lie in [0, 1] (found {probs.min():g} to {probs.max():g}).")
    extra = {c: np.array([r[c] for r in rows]) for c in extra_columns}
    return (labels[:, 0] if y_cols == ["y"] else labels), probs, extra


def read_predictions_with_meta(path: str | os.PathLike, values: bool = False
                               ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(labels, probs, extra)`` of a predictions CSV, ``extra`` holding every column besides index, y and p."""
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    extra = tuple(c for c in header if c != "index" and c != "y" and not (c[:2] in ("y_", "p_") and c[2:].isdigit()))
    return read_predictions(path, extra_columns=extra, values=values)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


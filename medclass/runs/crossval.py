"""K-fold cross-validation, then a refit on train+val: the function behind ``medclass cv``.

::

    runs/cv/
      cv_config.yaml         the settings every fold shares (a re-run with other settings is refused)
      fold-0/ ... fold-K-1/  ordinary run folders, trained with data.folds=K, data.fold=k (reusing train())
      oof.csv                the pooled out-of-fold predictions: each non-test image scored by the one fold
                             model that did not train on it (column ``fold`` says which)
      cv.json                per fold: best epoch, val AUC/ACC; mean and sd across folds; the OOF evaluation
      refit/                 trained on train+val for the median of the folds' best epochs, last epoch kept

Folds are grouped by patient when the manifest has patient ids (:func:`~medclass.data.splits.kfold`) and by
image for MedMNIST, whose files have none. Completed folds are skipped and interrupted ones resumed, so an
interrupted cross-validation continues where it stopped when it is run again.

The refit has no held-out validation split (its val split is training data), so its checkpoint is the last
epoch, and its ``predictions/val.csv`` and ``metrics/val.json`` are replaced by the out-of-fold ones
(the originals are kept as ``val-training-data``). ``medclass evaluate runs/cv/refit --split test`` thus
chooses its operating points on out-of-fold predictions, never on images the refit trained on. Nothing
here loads the test split.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig, config_from_dict, config_to_dict, load_yaml, replace, validate
from ..data.download import ProgressFn
from ..errors import ConfigError, RunFolderError
from ..evaluation.kinds import get_kind
from ..run_folder import RunFolder, read_predictions_with_meta, write_predictions
from ..training import Callback
from ..utils.io import atomic_write_json, atomic_write_yaml, read_json
from .evaluate import assess_card
from .train import resume, train

__all__ = ["cross_validate", "fold_dirs"]

log = logging.getLogger(__name__)

StageFn = Callable[[str], None]


def fold_dirs(cv_dir: str | os.PathLike) -> list[Path]:
    """The fold run folders of a cross-validation folder (``fold-0``, ``fold-1``, ...), in fold order."""
    cv_dir = Path(cv_dir)
    found = [p for p in cv_dir.glob("fold-*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def cross_validate(cfg: RunConfig, out: str | os.PathLike, folds: int = 5, refit: bool = True, *,
                   overwrite: bool = False, callbacks: Sequence[Callback] = (), on_stage: StageFn | None = None,
                   download_progress: ProgressFn | None = None,
                   decode_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train ``folds`` folds of ``cfg`` into ``out/fold-k``, score the out-of-fold predictions, then refit.

    Args:
        cfg: the settings every fold shares; ``data.folds``/``data.fold``/``data.refit`` are set per run here.
        out: the cross-validation folder. If it holds an earlier cross-validation with the same settings,
            completed folds are kept and interrupted ones resumed.
        folds: K, at least 2.
        refit: afterwards, train ``out/refit`` on train+val for the median of the folds' best epochs.
        overwrite: start again, deleting an earlier cross-validation in ``out``.
        callbacks: extra training callbacks (progress bars), used by every fold and the refit.
        on_stage: ``fn(message)`` at each stage (a fold starts or is skipped, the refit starts).

    Returns:
        The dict also written to ``out/cv.json``.

    Raises:
        ConfigError: ``folds`` < 2, or settings that cross-validation cannot use (``data.refit``,
            ``data.split_file``). RunFolderError: ``out`` holds another cross-validation or other files.

    Example:
        >>> from medclass import build_config, cross_validate
        >>> cfg = build_config(overrides={"data": {"dataset": "breastmnist"}})
        >>> cv = cross_validate(cfg, "runs/cv", folds=5)  # doctest: +SKIP
        >>> cv["oof"]["auc"]  # doctest: +SKIP
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"The 'folds' parameter of cross_validate must be an integer >= 2 (--folds). "
                          f"Got {folds!r} instead.")
    validate(cfg)
    if cfg.data.refit:
        raise ConfigError("cross_validate trains the folds on data.refit=false; the refit is its last step "
                          "(refit=True, or drop --no-refit). Unset data.refit.")
    if cfg.data.split_file:
        raise ConfigError(f"data.split_file ('{cfg.data.split_file}') fixes train/val/test, but cross-validation "
                          f"makes its own folds of the non-test images. Unset data.split_file.")
    say = on_stage or (lambda msg: log.info("%s", msg))
    out = Path(out)
    base = replace(cfg, data=replace(cfg.data, folds=folds, fold=0))
    _check_folder(out, base, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    with RunFolder(out).lock("cv"):
        _prepare_folder(out, base, overwrite)
        return _cross_validate(out, base, folds, refit, say, callbacks, download_progress, decode_progress)


def _cross_validate(out: Path, base: RunConfig, folds: int, refit: bool, say: StageFn, callbacks: Sequence[Callback],
                    download_progress: ProgressFn | None, decode_progress: ProgressFn | None) -> dict[str, Any]:
    runs = []
    for k in range(folds):
        fold_cfg = replace(base, data=replace(base.data, fold=k))
        runs.append(_train_or_continue(fold_cfg, out / f"fold-{k}", f"fold {k + 1}/{folds}", say, callbacks,
                                       download_progress, decode_progress))
    summary = _summarise(out, runs, base)
    atomic_write_json(out / "cv.json", summary)
    if refit:
        epochs = summary["chosen_epochs"]
        refit_cfg = replace(base, data=replace(base.data, folds=0, fold=0, refit=True),
                            train=replace(base.train, epochs=epochs, checkpoint="last", early_stopping=0))
        folder = _train_or_continue(refit_cfg, out / "refit", f"refit on train+val for {epochs} epoch(s)", say,
                                    callbacks, download_progress, decode_progress)
        _install_oof(folder, out, summary)
        summary["refit"] = {"run": "refit", "epochs": epochs, "checkpoint": "last epoch",
                            "train": "train + val (every non-test image)",
                            "val_predictions": "replaced by the out-of-fold predictions (oof.csv)",
                            "evaluate": f"medclass evaluate {folder.path} --split test"}
        atomic_write_json(out / "cv.json", summary)
    return summary


def _check_folder(out: Path, cfg: RunConfig, overwrite: bool) -> None:
    saved = out / "cv_config.yaml"
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"Output path '{out}' exists and is a file, not a folder. Choose another --out.")
    if out.is_dir() and any(e.name != ".lock" for e in out.iterdir()):
        if not saved.is_file():
            raise RunFolderError(f"'{out}' is not empty and holds no cross-validation (no cv_config.yaml). "
                                 f"Choose another --out.")
        if not overwrite and config_to_dict(config_from_dict(load_yaml(saved))) != config_to_dict(cfg):
            raise RunFolderError(f"'{out}' holds a cross-validation with other settings (see {saved}). Re-run it "
                                 f"with the same settings to continue it, pass --overwrite to start again, or "
                                 f"choose another --out.")


def _prepare_folder(out: Path, cfg: RunConfig, overwrite: bool) -> None:
    """Empty the folder (keeping the lock) when overwriting, and record the settings every fold shares."""
    if overwrite:
        for e in out.iterdir():
            if e.name != ".lock":
                shutil.rmtree(e) if e.is_dir() and not e.is_symlink() else e.unlink()
    atomic_write_yaml(out / "cv_config.yaml", config_to_dict(cfg))


def _train_or_continue(cfg: RunConfig, path: Path, what: str, say: StageFn, callbacks: Sequence[Callback],
                       download_progress: ProgressFn | None, decode_progress: ProgressFn | None) -> RunFolder:
    folder = RunFolder(path)
    if folder.is_run():
        state = folder.read_status().get("state")
        if state == "complete":
            say(f"{what}: complete in {path}, skipped")
            return folder
        say(f"{what}: continuing the {state} run in {path}")
        return resume(path, callbacks=callbacks, download_progress=download_progress,
                      decode_progress=decode_progress)
    say(f"{what}: training {path}")
    return train(cfg, path, callbacks=callbacks, download_progress=download_progress,
                 decode_progress=decode_progress)


def _summarise(out: Path, runs: list[RunFolder], cfg: RunConfig) -> dict[str, Any]:
    """cv.json: per-fold results, their mean and sd, and the pooled out-of-fold evaluation; writes oof.csv."""
    card = read_json(runs[0].dataset_card)
    per_fold, ys, ps, extras, losses = [], [], [], [], []
    for k, f in enumerate(runs):
        st, m = f.read_status(), read_json(f.metrics("val"))
        monitor = st.get("monitor", "val_auc")
        y, p, extra = read_predictions_with_meta(f.predictions("val"), values=get_kind(card["task"]).values)
        ys.append(y)
        ps.append(p)
        extras.append({**extra, "fold": np.full(len(y), str(k))})
        losses.append((m.get("loss"), len(y)))
        per_fold.append({"fold": k, "run": f.path.name, "best_epoch": st.get("best_epoch"),
                         "epochs_completed": st.get("epochs_completed"), "monitor": monitor,
                         f"best_{monitor}": st.get(f"best_{monitor}"), "auc": m.get("auc"), "acc": m.get("acc"),
                         "n_val": len(y)})
    keys = [c for c in extras[0] if all(c in e for e in extras)]
    y, p = np.concatenate(ys), np.concatenate(ps)
    extra = {c: np.concatenate([e[c] for e in extras]) for c in keys}
    write_predictions(out / "oof.csv", y, p, extra)
    result = assess_card(card, y, p, extra, cfg, (y, p))
    finite = [(v, n) for v, n in losses if isinstance(v, (int, float)) and math.isfinite(v)]
    oof = {"dataset": card["name"], "split": "val", "predictions": "out-of-fold", **result.pop("metrics"),
           "loss": sum(v * n for v, n in finite) / sum(n for _, n in finite) if finite else None,
           "tta": cfg.eval.tta, **result}
    best_epochs = [r["best_epoch"] for r in per_fold if r["best_epoch"] is not None]
    stats = {}
    for key in ("auc", "acc", f"best_{per_fold[0]['monitor']}"):
        vals = [r[key] for r in per_fold if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        if vals:
            stats[key] = {"mean": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                          "n_folds": len(vals)}
    d = cfg.data
    return {
        "dataset": card["name"], "task": card["task"], "labels": card["labels"], "folds": len(runs),
        "split_seed": d.split_seed, "unit": "patient" if "patient_id" in extra else card.get("unit", "image"),
        "pool": "every non-test patient" if d.manifest else "official train + val",
        "per_fold": per_fold, "across_folds": stats,
        "chosen_epochs": max(1, int(math.floor(float(np.median(best_epochs)) + 0.5))),
        "chosen_epochs_rule": "median of the folds' best epochs (rounded half up)",
        "oof": oof, "oof_predictions": "oof.csv", "refit": None,
        "test_split": "not used by cross-validation",
    }


def _install_oof(folder: RunFolder, cv_dir: Path, summary: dict[str, Any]) -> None:
    """Replace the refit's val predictions and metrics (training data) by the out-of-fold ones, once."""
    st = folder.read_status()
    if st.get("val_predictions") == "out-of-fold":
        return
    for old, new in ((folder.predictions("val"), folder.predictions("val-training-data")),
                     (folder.metrics("val"), folder.metrics("val-training-data"))):
        if old.is_file():
            os.replace(old, new)
    values = get_kind(summary["task"]).values
    write_predictions(folder.predictions("val"), *read_predictions_with_meta(cv_dir / "oof.csv", values=values))
    runs = [r["run"] for r in summary["per_fold"]]
    atomic_write_json(folder.metrics("val"), {
        **summary["oof"],
        "out_of_fold": {"folds": summary["folds"], "cross_validation": str(cv_dir),
                        "runs": [str(cv_dir / r) for r in runs],
                        "note": "This run trained on train+val, so its own val predictions are training data "
                                "(kept as predictions/val-training-data.csv). These are the cross-validation's "
                                "out-of-fold predictions of the same images: operating points for the test split "
                                "are chosen on them."}})
    folder.write_status("complete", val_predictions="out-of-fold", cross_validation=str(cv_dir))

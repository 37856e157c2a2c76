"""Ensembles of finished runs: class probabilities averaged over members, ``medclass ensemble``.

Each member is scored with its own checkpoint (chosen on its own validation split) and its own input
contract: size, channels and normalisation come from the member's checkpoint, so a 28 px and a 64 px run of
the same dataset can be combined. The members must agree on the dataset, task and labels and must have
scored the same images of the split (for own images: the same rows of ``split.csv``); the probabilities
are then averaged image by image, optionally with test-time augmentation (each image and its left-right
mirror).

Operating points are chosen on validation predictions, never on the scored split:

- members sharing one val split (several seeds or models on one split): the averaged val predictions;
- members with disjoint val splits (the folds of ``medclass cv``): the out-of-fold predictions, each
  member's own val predictions concatenated, every image scored by a model that did not train on it;
- anything else (overlapping val splits, a refit whose val split is training data): none, and it says so.

The ensemble folder holds ``ensemble.json`` (members, checkpoints, where the operating points came from),
``predictions/<split>.csv``, ``predictions/val.csv`` and ``metrics/<split>.json`` in the format of
:func:`~medclass.runs.evaluate.evaluate_run`, each written atomically.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import replace
from ..data.build import build_dataset
from ..data.datasets import ImageDataset
from ..errors import ConfigError, DataError, RunFolderError
from ..run_folder import RunFolder, load_run_config, write_predictions
from ..utils.io import atomic_write_json, read_json
from .crossval import fold_dirs
from .environment import resolve_device
from .evaluate import assess_card, predict_split

__all__ = ["ensemble_runs", "ensemble_members"]

log = logging.getLogger(__name__)


def ensemble_members(run_dirs: Sequence[str | os.PathLike]) -> list[RunFolder]:
    """The member runs: each path is a run folder, or a ``medclass cv`` folder standing for its fold runs."""
    members: list[RunFolder] = []
    for r in run_dirs:
        path = Path(r)
        if (path / "cv.json").is_file() or ((path / "cv_config.yaml").is_file() and not RunFolder(path).is_run()):
            folds = fold_dirs(path)
            if not folds:
                raise RunFolderError(f"Cross-validation folder '{path}' holds no fold runs (fold-0, fold-1, ...).")
            members += [RunFolder(f) for f in folds]
        else:
            members.append(RunFolder(path))
    seen = {}
    for m in members:
        key = m.path.resolve()
        if key in seen:
            raise ConfigError(f"Run '{m.path}' is listed twice (also as '{seen[key]}'); each member counts once.")
        seen[key] = m.path
    if len(members) < 2:
        raise ConfigError(f"An ensemble needs at least 2 runs; got {len(members)} "
                          f"({', '.join(str(m.path) for m in members) or 'none'}). Pass several run folders, or the "
                          f"folder of a `medclass cv` run (its fold runs).")
    for m in members:
        m.require_complete()
    return members


def ensemble_runs(run_dirs: Sequence[str | os.PathLike], split: str = "test", tta: bool | None = None,
                  out: str | os.PathLike | None = None, *, data_dir: str | None = None,
                  device: str | None = None) -> dict[str, Any]:
    """Average the class probabilities of several complete runs on ``split`` and evaluate them.

    Args:
        run_dirs: run folders (at least 2), or the folder of a ``medclass cv`` run for its fold runs.
        split: the split to score (``test`` by default; ``val`` only for members sharing one val split).
        tta: average each image with its left-right mirror; ``None``: each member's own ``eval.tta``.
        out: the ensemble folder to write (``ensemble.json``, predictions, metrics); ``None``: write nothing.
        data_dir: where the dataset lives on this machine, if not where the runs found it.
        device: override the members' device (``cpu``, ``cuda``).

    Returns:
        The evaluation dict (also written to ``out/metrics/<split>.json``), with an ``ensemble`` entry
        listing the members and where the operating points were chosen.

    Raises:
        ConfigError: fewer than 2 runs. RunFolderError: a run that is not complete, or ``out`` is not an
        ensemble folder. DataError: members of different datasets, tasks or labels, or that scored
        different images.

    Example:
        >>> m = ensemble_runs(["runs/s0", "runs/s1", "runs/s2"], split="test", out="runs/ens")  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    members = ensemble_members(run_dirs)
    out = Path(out) if out is not None else None
    if out is not None:
        _check_out(out, members)
    cfgs = [load_run_config(m, data_dir) for m in members]
    cards = [read_json(m.dataset_card) for m in members]
    _check_same_dataset(members, cards)
    _check_same_split_rows(members, cfgs, split)
    scored = _score_members(members, cfgs, split, tta, device)
    proba = np.mean(scored.probs, axis=0)
    labels = scored.labels
    val, val_source, val_extra = _validation(scored.vals, scored.infos)
    if split == "val":
        val_source = "the scored val split itself"
    card, ev_cfg = cards[0], cfgs[0]
    split_meta = scored.dataset.split(split).meta
    result = assess_card(card, labels, proba, split_meta, ev_cfg, val if split != "val" else (labels, proba))
    infos = scored.infos
    tta_used = sorted({i["tta"] for i in infos})
    ensemble = {"members": infos, "n_members": len(infos), "combine": "mean of the members' class probabilities",
                "tta": tta_used[0] if len(tta_used) == 1 else "per member",
                "operating_points_from": val_source}
    metrics = {"dataset": card["name"], "split": split, **result.pop("metrics"), "ensemble": ensemble,
               "tta": ensemble["tta"], "inference_seconds": round(time.perf_counter() - t0, 3), **result}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with RunFolder(out).lock("ensemble"):  # the files of one ensemble, never mixed with another's
            write_predictions(out / "predictions" / f"{split}.csv", labels, proba, split_meta)
            if val is not None and split != "val":
                write_predictions(out / "predictions" / "val.csv", val[0], val[1], val_extra)
            atomic_write_json(out / "metrics" / f"{split}.json", metrics)
            atomic_write_json(out / "ensemble.json", {"dataset": card["name"], "task": card["task"],
                                                      "labels": card["labels"], "split": split, **ensemble})
    log.info("ensemble of %d runs, %s %s: auc %s (n=%d)", len(infos), card["name"], split, metrics.get("auc"),
             metrics["n"])
    return metrics


@dataclass
class _Scored:
    """What the members predicted on one split, aligned to the first member's image order."""

    dataset: ImageDataset  # the first member's dataset (its split's metadata is written with the predictions)
    labels: np.ndarray
    probs: list[np.ndarray] = field(default_factory=list)  # per member
    vals: list[tuple] = field(default_factory=list)  # per member: (val image keys, val labels, val probs, member)
    infos: list[dict[str, Any]] = field(default_factory=list)  # per member, for ensemble.json


def _score_members(members: list[RunFolder], cfgs: list, split: str, tta: bool | None, device: str | None) -> _Scored:
    """Each member's probabilities on ``split`` (and on val, where operating points are chosen), checked to be of
    the same images with the same labels."""
    scored: _Scored | None = None
    ref_keys: list[str] = []
    for m, cfg in zip(members, cfgs):
        cfg = replace(cfg, eval=replace(cfg.eval, tta=cfg.eval.tta if tta is None else bool(tta)))
        ds = build_dataset(cfg.data, run_dir=m.path)
        keys = _image_keys(ds, split)
        order = np.arange(len(keys)) if scored is None else _alignment(ref_keys, keys, members[0], m, split)
        dev = resolve_device(device or cfg.train.device)
        p, y, meta, _ = predict_split(m, ds, split, cfg, dev)
        p, y = p[order], y[order]
        if scored is None:
            scored, ref_keys = _Scored(ds, y), keys
        elif not np.array_equal(scored.labels, y):
            raise DataError(f"Runs '{members[0].path}' and '{m.path}' have different labels for the same {split} "
                            f"images; they were not trained on the same data.")
        scored.probs.append(p)
        if split == "val":  # scored and validated on the same images (aligned above)
            scored.vals.append((ref_keys, y, p, m))
        else:
            vp_, vy, _, _ = predict_split(m, ds, "val", cfg, dev)
            scored.vals.append((_image_keys(ds, "val"), vy, vp_, m))
        scored.infos.append({"run": str(m.path), "checkpoint": str(m.best_weights), "epoch": meta.get("epoch"),
                             "chosen_by": meta.get("chosen_by", "validation"), "model": meta.get("model"),
                             "input_size": meta.get("input_size"), "in_chans": meta.get("in_chans"),
                             "tta": cfg.eval.tta, "refit": bool(cfg.data.refit)})
    return scored


def _check_out(out: Path, members: list[RunFolder]) -> None:
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"Output path '{out}' exists and is a file, not a folder. Choose another --out.")
    if out.is_dir() and any(e.name != ".lock" for e in out.iterdir()) and not (out / "ensemble.json").is_file():
        raise RunFolderError(f"'{out}' is not empty and is not an ensemble folder (no ensemble.json). "
                             f"Choose another --out.")
    for m in members:
        if out.resolve() == m.path.resolve():
            raise RunFolderError(f"--out '{out}' is a member run; write the ensemble to a folder of its own.")


def _check_same_dataset(members: list[RunFolder], cards: list[dict]) -> None:
    a = cards[0]
    for m, c in zip(members[1:], cards[1:]):
        for key, what in (("name", "dataset"), ("task", "task"), ("labels", "labels")):
            if c.get(key) != a.get(key):
                raise DataError(f"Runs '{members[0].path}' and '{m.path}' have different {what}s ({a.get(key)!r} and "
                                f"{c.get(key)!r}); an ensemble averages runs of one dataset, task and label set.")


def _check_same_split_rows(members: list[RunFolder], cfgs: list, split: str) -> None:
    """Own images: the members' split.csv must list the same images in ``split`` (checked before any prediction)."""
    rows = []
    for m, cfg in zip(members, cfgs):
        f = m.path / "split.csv"
        if cfg.data.manifest is None or not f.is_file():
            return
        with open(f, newline="", encoding="utf-8") as fh:
            rows.append({r["key"] for r in csv.DictReader(fh) if r.get("split") == split})
    for m, r in zip(members[1:], rows[1:]):
        if r != rows[0]:
            _mismatch(members[0], m, split, rows[0], r)


def _mismatch(a: RunFolder, b: RunFolder, split: str, ka, kb) -> None:
    only_a, only_b = sorted(set(ka) - set(kb)), sorted(set(kb) - set(ka))
    eg = ", ".join((only_a or only_b)[:3])
    raise DataError(f"Runs '{a.path}' and '{b.path}' scored different {split} images ({len(ka)} and {len(kb)}; "
                    f"{len(only_a)} only in the first, {len(only_b)} only in the second, e.g. {eg}). An ensemble "
                    f"needs members trained with the same split (data.split_file, or the same data.split_seed).")


def _image_keys(ds: ImageDataset, split: str) -> list[str]:
    """One identifier per image of ``split``: the manifest path, else where it is in the published file."""
    s = ds.split(split)
    for col in ("path", "source"):
        if col in s.meta:
            return [str(v) for v in s.meta[col]]
    return [f"{split}[{i}]" for i in range(len(s))]


def _alignment(ref: list[str], keys: list[str], a: RunFolder, b: RunFolder, split: str) -> np.ndarray:
    """Indices putting ``keys`` in the order of ``ref``; a DataError naming both runs when the images differ."""
    if keys == ref:
        return np.arange(len(keys))
    if len(keys) != len(ref) or set(keys) != set(ref):
        _mismatch(a, b, split, ref, keys)
    where = {k: i for i, k in enumerate(keys)}
    return np.array([where[k] for k in ref])


def _validation(vals: list, infos: list[dict]) -> tuple[tuple[np.ndarray, np.ndarray] | None, str, dict]:
    """Validation predictions for the operating points: averaged (shared val), out-of-fold (disjoint), or none."""
    refit = [str(m.path) for (_, _, _, m), i in zip(vals, infos) if i["refit"]]
    if refit:
        return None, (f"none: {refit[0]} was refit on its val split, so no member's validation predictions are "
                      f"held out for all members"), {}
    key_sets = [set(k) for k, _, _, _ in vals]
    if all(s == key_sets[0] for s in key_sets):
        ref = vals[0][0]
        ps = []
        for keys, _, p, _ in vals:
            where = {k: i for i, k in enumerate(keys)}
            ps.append(p[[where[k] for k in ref]])
        return (vals[0][1], np.mean(ps, axis=0)), "averaged validation predictions (the members share one val split)", \
            {"image": np.array(ref)}
    if sum(len(s) for s in key_sets) == len(set().union(*key_sets)):
        y = np.concatenate([v[1] for v in vals])
        p = np.concatenate([v[2] for v in vals])
        member = np.concatenate([np.full(len(v[1]), str(v[3].path)) for v in vals])
        keys = np.array([k for v in vals for k in v[0]])
        return (y, p), ("out-of-fold validation predictions (the members' val splits are disjoint folds: each "
                        "member's own val predictions, concatenated)"), {"image": keys, "member": member}
    return None, "none: the members' val splits overlap without being the same, so no validation set is held out", {}

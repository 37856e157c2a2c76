"""Robustness under corruption: ``medclass evaluate RUN --corruptions``.

The split's images, exactly as the run's input pipeline produced them (uint8, at the run's size, before
normalisation), are corrupted with the MedMNIST-C corruptions of the data's modality
(:mod:`medclass.transforms.corruptions`) at each severity and scored with the run's validation-chosen checkpoint,
its normaliser and its test-time augmentation setting, through the same code as ``medclass evaluate``
(:func:`~medclass.runs.evaluate.predict_split`). So the clean row equals ``metrics/<split>.json``.

Per corruption and severity the result holds AUC and ACC (MedMNIST's definitions, as in ``metrics/<split>.json``),
balanced accuracy (MedMNIST-C's metric: its balanced error is one minus it), a percentile bootstrap interval for
the AUC and for its change from the clean AUC (paired: the same resamples of the same images), and, for binary
tasks, sensitivity and specificity at the operating points chosen on the clean validation split. Nothing is
chosen on corrupted data. The corrupted images are drawn from one seed per image (independent of the run's
seed), so two runs on the same data are scored on the same corrupted images. Everything goes to
``metrics/corruptions-<split>.json``, written atomically under the run folder's lock.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from ..data.build import build_dataset
from ..data.datasets import ArraySplit
from ..data.pipeline import InputPipeline
from ..errors import ConfigError, RunFolderError, did_you_mean
from ..evaluation.assess import weighted_metric_functions
from ..evaluation.bootstrap import percentile_interval, resample_counts
from ..evaluation.kinds import KINDS, classification_metrics, get_kind
from ..evaluation.metrics import MISSING
from ..evaluation.thresholds import choose_operating_points
from ..models import read_weights_metadata
from ..run_folder import RunFolder, load_run_config, read_predictions
from ..transforms.corruptions import (
    MEDMNISTC_VERSION,
    SEVERITIES,
    Corruption,
    choose_corruption_set,
    corrupt_images,
    get_corruption_set,
)
from ..utils.io import atomic_write_json, read_json
from .environment import resolve_device
from .evaluate import predict_split

__all__ = ["SOURCE", "evaluate_corruptions"]

log = logging.getLogger(__name__)

SOURCE = (f"MedMNIST-C corruptions and severity parameters (Di Salvo et al. 2024; medmnistc {MEDMNISTC_VERSION}, "
          f"Apache-2.0) re-implemented in medclass with NumPy, SciPy, scikit-image and Pillow; motion blur as "
          f"ImageMagick's kernel, without Wand")
DEFINED_AT_SIZE = 224  # medmnistc corrupts the 224 px MedMNIST+ images


def evaluate_corruptions(run_dir: str | os.PathLike, split: str = "test", severities: Sequence[int] = SEVERITIES,
                         data_dir: str | None = None, device: str | None = None, *, corruption_set: str | None = None,
                         corruptions: Sequence[str] | None = None, seed: int = 0, n_boot: int | None = None,
                         progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Score ``split`` of a complete run under the MedMNIST-C corruptions; write ``metrics/corruptions-<split>.json``.

    Args:
        run_dir: a run folder whose status is ``complete``.
        split: the split to corrupt and score (``test`` unless there is a reason).
        severities: which of MedMNIST-C's severities 1-5 to score.
        data_dir: where the dataset lives on this machine, if not where the run found it.
        device: override the run's device (``cpu``, ``cuda``).
        corruption_set: a MedMNIST-C set by dataset name (``breastmnist``, ...) or ``generic``; default: the set
            :func:`~medclass.transforms.corruptions.choose_corruption_set` picks for the run's data.
        corruptions: score only these corruptions of the set (default: all it has).
        seed: seed of the corruptions' randomness (noise, angles, bubbles); not the run's seed.
        n_boot: bootstrap replicates of the AUC intervals (default: the run's ``eval.n_boot``).
        progress: ``fn(done, total)`` over the corrupted sets scored.

    Returns:
        The dict also written: ``clean`` and, per corruption, lists over ``severities`` of ``auc``, ``acc``,
        ``balanced_accuracy``, AUC intervals and changes, plus ``mean`` (over corruptions, per severity) and the
        set that was used and why.

    Raises:
        ConfigError: an unknown set or corruption, a severity outside 1-5, or a regression / multi-task run.
        RunFolderError: an unfinished run, or ``--split val`` of a cross-validation refit.

    Example:
        >>> r = evaluate_corruptions("runs/b0")  # doctest: +SKIP
        >>> r["corruptions"]["speckle_noise"]["auc"]  # doctest: +SKIP
        [0.91, 0.89, 0.86, 0.84, 0.80]
    """
    folder = RunFolder(run_dir).require_complete()
    sev = _check_severities(severities)
    card = _check_run(folder, split)
    meta = read_weights_metadata(folder.best_weights)
    pipeline = InputPipeline.from_checkpoint_meta(meta)
    if corruption_set is None:
        set_name, why = choose_corruption_set(card["name"], pipeline.preprocess.preset,
                                              pipeline.expected.get("modalities") or ())
    else:
        set_name, why = corruption_set, "the user (--corruption-set)"
    cset = get_corruption_set(set_name)
    chosen = _choose(cset.corruptions, corruptions, cset.name)
    t0 = time.perf_counter()
    with folder.lock(f"evaluate --corruptions --split {split}"):
        cfg = load_run_config(folder, data_dir)
        ds = build_dataset(cfg.data, run_dir=folder.path)
        dev = resolve_device(device or cfg.train.device)
        part = ds.split(split)
        val = _validation(folder, ds, split, cfg, dev)
        ctx = _Scorer(card, cfg, val, part.meta.get("patient_id"), cfg.eval.n_boot if n_boot is None else n_boot)
        probs, labels, _, _ = predict_split(folder, ds, split, cfg, dev)
        clean = ctx.score(labels, probs, clean=True)
        clean["agrees_with"] = _agreement(folder, split, clean)
        total, done = len(chosen) * len(sev), 0

        def score(corruption: Corruption, s: int) -> dict[str, Any]:
            nonlocal done
            images = corrupt_images(part.images, corruption, s, seed)
            cds = dataclasses.replace(ds, splits={split: ArraySplit(images, part.labels, part.meta)})
            p, y, _, _ = predict_split(folder, cds, split, cfg, dev)
            done += 1
            if progress is not None:
                progress(done, total)
            return ctx.score(y, p)

        rows = {name: _row(c, sev, [score(c, s) for s in sev]) for name, c in chosen.items()}
        result = {
            "dataset": card["name"], "split": split, "task": card["task"], "n": len(labels),
            "source": SOURCE, "corruption_set": {"name": cset.name, "modality": cset.modality, "chosen_by": why},
            "skipped": dict(cset.skipped), "severities": sev, "seed": seed,
            "image_size": int(part.images.shape[1]), "channels": int(part.images.shape[-1]),
            "defined_at_size": DEFINED_AT_SIZE, "size_note": _size_note(int(part.images.shape[1])),
            "checkpoint": {"file": "checkpoints/best.safetensors", "epoch": meta.get("epoch")},
            "operating_points_from": "the clean validation split" if ctx.points else None,
            "bootstrap": {"replicates": ctx.n_boot, "level": cfg.eval.ci_level, "seed": cfg.seed,
                          "unit": "patient" if ctx.groups is not None else "image",
                          "paired": "corrupted and clean AUC on the same resamples"},
            "clean": clean, "corruptions": rows,
            "mean": {k: [_mean([r[k][i] for r in rows.values()]) for i in range(len(sev))]
                     for k in ("auc", "acc", "balanced_accuracy")},
            "seconds": round(time.perf_counter() - t0, 1),
        }
        atomic_write_json(folder.metrics(f"corruptions-{split}"), result)
    log.info("%s %s under %d corruptions x %d severities: mean AUC %.4f (clean %.4f)", ds.name, split, len(rows),
             len(sev), _mean(result["mean"]["auc"]), clean["auc"])
    return result


def _check_run(folder: RunFolder, split: str) -> dict[str, Any]:
    """The run's dataset card, once the split and the task can be scored under corruption."""
    if split == "val" and folder.read_status().get("val_predictions") == "out-of-fold":
        raise RunFolderError(f"Run '{folder.path}' was refit on train+val, so its val split is training data. "
                             f"Score --split test.")
    card = read_json(folder.dataset_card)
    kind = get_kind(card["task"])
    if kind.values or kind.multihead:
        scored = [k for k, v in KINDS.items() if not (v.values or v.multihead)]
        raise ConfigError(f"Corruption robustness is scored for classification runs ({', '.join(scored)}); run "
                          f"'{folder.path}' is a {card['task']} run.")
    return card


def _row(corruption: Corruption, sev: Sequence[int], scores: list[dict[str, Any]]) -> dict[str, Any]:
    """One corruption's scores over the severities, as lists, with their means."""
    row = {"family": corruption.family, "params": [_plain(corruption.params[s - 1]) for s in sev], **_columns(scores)}
    row["mean_auc"] = _mean(row["auc"])
    row["mean_acc"] = _mean(row["acc"])
    return row


def _check_severities(severities: Sequence[int]) -> list[int]:
    sev = [int(s) for s in severities]
    bad = [s for s in sev if s not in SEVERITIES]
    if not sev or bad or len(set(sev)) != len(sev):
        raise ConfigError(f"Severities must be distinct values among {', '.join(map(str, SEVERITIES))} "
                          f"(MedMNIST-C's five). Got {', '.join(map(str, severities)) or 'none'} instead.")
    return sorted(sev)


def _choose(available: dict[str, Any], wanted: Sequence[str] | None, set_name: str) -> dict[str, Any]:
    if not wanted:
        return dict(available)
    for w in wanted:
        if w not in available:
            raise ConfigError(f"The {set_name} corruption set has no corruption {w!r}.{did_you_mean(w, available)} "
                              f"Available: {', '.join(available)}.")
    return {w: available[w] for w in wanted}


def _validation(folder: RunFolder, ds, split: str, cfg, dev) -> tuple[np.ndarray, np.ndarray] | None:
    """The clean validation predictions (where operating points are chosen), as ``medclass evaluate`` reads them."""
    if split == "val":
        return None
    if folder.predictions("val").is_file():
        return read_predictions(folder.predictions("val"))[:2]
    p, y, _, _ = predict_split(folder, ds, "val", cfg, dev)
    return y, p


class _Scorer:
    """Scores one set of predictions the way the clean row is scored; the clean AUC replicates are kept for the
    paired changes."""

    def __init__(self, card: dict[str, Any], cfg, val, groups, n_boot: int):
        self.task, self.labels = card["task"], tuple(card["labels"])
        self.kind = get_kind(self.task)
        self.positive_label = card.get("positive_label")
        self.pos = 1 if self.positive_label is None else int(self.positive_label)
        self.threshold, self.level, self.seed = cfg.eval.threshold, cfg.eval.ci_level, cfg.seed
        self.groups, self.n_boot = groups, int(n_boot)
        self.points = []
        if self.kind.has_positive_class and val is not None:
            y_val, p_val = np.asarray(val[0]), np.asarray(val[1], dtype=float)
            # exactly as evaluate chooses them (evaluation.assess), so the thresholds are metrics/<split>.json's
            self.points = choose_operating_points(y_val == self.pos, p_val[:, self.pos], cfg.eval.sensitivity_target,
                                                  cfg.eval.specificity_target)
        self.clean_auc = float("nan")
        self.clean_reps: np.ndarray | None = None

    def _replicates(self, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The AUC of each bootstrap resample, drawn as :func:`~medclass.evaluation.bootstrap.bootstrap` draws them."""
        fn = weighted_metric_functions(y, p, self.task, self.pos, self.threshold)["auc"]
        rng = np.random.default_rng(self.seed)
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.concatenate([fn(w) for w in resample_counts(len(y), self.n_boot, rng, self.groups)])

    def score(self, y: np.ndarray, p: np.ndarray, clean: bool = False) -> dict[str, Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a one-class split: NaN, as in metrics/<split>.json
            m = classification_metrics(y, p, self.task, self.labels, threshold=self.threshold,
                                       positive_label=self.positive_label)
        out: dict[str, Any] = {"auc": m["auc"], "acc": m["acc"], "balanced_accuracy": self._balanced(y, p, m)}
        if clean:
            self.clean_auc = m["auc"]
        else:
            out["auc_change"] = float(m["auc"] - self.clean_auc)
        if self.n_boot > 0:
            reps = self._replicates(y, p)
            out["auc_low"], out["auc_high"] = percentile_interval(reps, self.level)
            if clean:
                self.clean_reps = reps
            else:
                out["auc_change_low"], out["auc_change_high"] = percentile_interval(reps - self.clean_reps, self.level)
        if self.points:
            score = p[:, self.pos]
            y_pos = y == self.pos
            out["operating_points"] = {}
            for op in self.points:
                pred = score >= op.threshold
                sens = float((pred & y_pos).sum() / y_pos.sum()) if y_pos.any() else float("nan")
                spec = float((~pred & ~y_pos).sum() / (~y_pos).sum()) if (~y_pos).any() else float("nan")
                out["operating_points"][op.name] = {"sensitivity": sens, "specificity": spec,
                                                    **({"threshold": op.threshold} if clean else {})}
        return out

    def _balanced(self, y: np.ndarray, p: np.ndarray, m: dict[str, Any]) -> float:
        """MedMNIST-C's balanced accuracy: binary at the threshold, multi-class of the argmax, multi-label the mean
        over labels at the threshold."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if self.kind.has_positive_class:
                return float(m["balanced_accuracy"])
            if self.kind.multilabel:
                per = []
                for i in range(y.shape[1]):
                    known = y[:, i] != MISSING
                    if len(np.unique(y[known, i])) > 1:
                        per.append(balanced_accuracy_score(y[known, i], p[known, i] > self.threshold))
                return float(np.mean(per)) if per else float("nan")
            return float(balanced_accuracy_score(y, p.argmax(1)))


def _columns(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-severity dicts as one list per key (operating points: one list per point and rate)."""
    out: dict[str, Any] = {k: [s[k] for s in scores] for k in scores[0] if k != "operating_points"}
    if "operating_points" in scores[0]:
        out["operating_points"] = {name: {r: [s["operating_points"][name][r] for s in scores]
                                          for r in ("sensitivity", "specificity")}
                                   for name in scores[0]["operating_points"]}
    return out


def _agreement(folder: RunFolder, split: str, clean: dict[str, Any]) -> dict[str, Any] | None:
    """Whether the clean row reproduces ``metrics/<split>.json`` (it should: the same checkpoint and code)."""
    path = folder.metrics(split)
    if not path.is_file():
        return None
    try:
        m = read_json(path)
    except (OSError, ValueError):
        return None
    same = all(k in m and (m[k] == clean[k] or (np.isnan(m[k]) and np.isnan(clean[k]))) for k in ("auc", "acc"))
    if not same:
        log.warning("%s: the clean score (AUC %.4f, ACC %.4f) differs from %s (AUC %s, ACC %s); was that file "
                    "written from another checkpoint? Re-score with medclass evaluate.", folder.path, clean["auc"],
                    clean["acc"], path.name, m.get("auc"), m.get("acc"))
    return {"file": f"metrics/{split}.json", "same_auc_and_acc": bool(same)}


def _size_note(size: int) -> str:
    if size == DEFINED_AT_SIZE:
        return "The images are 224 px, the size MedMNIST-C corrupts: this is the published benchmark's setting."
    return (f"MedMNIST-C corrupts 224 px images; here the same parameters act on {size} px images, so corruptions "
            f"measured in pixels (blur kernels, JPEG blocks, pixelation, bubbles) are "
            f"{'stronger' if size < DEFINED_AT_SIZE else 'weaker'} relative to the image than in the published "
            f"benchmark.")


def _plain(v: Any) -> Any:
    return [_plain(x) for x in v] if isinstance(v, (tuple, list)) else v


def _mean(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

"""``report.html``: one self-contained page a person can share, built only from a run folder's files.

Figures are PNGs embedded as data URIs and the styles are inline, so the page opens offline, by e-mail,
from a USB stick. It never trains and never scores: it reads ``config.yaml``, ``environment.json``,
``status.json``, ``dataset.json``, ``history.csv``, ``metrics/<split>.json`` and
``predictions/<split>.csv`` (written by ``medclass evaluate``), and the heatmap gallery (``explain/gallery.json``).
:func:`medclass.runs.report.write_report` (``medclass report``) builds a missing gallery first, through the
``gallery_builder`` this module is given; nothing here imports a workflow.

The page is written for a clinical reader: an intended-use box beside the headline numbers, every
statistical term explained in one sentence where it appears (:mod:`~medclass.reports.wording`), and
the raw configuration folded away at the end. The HTML comes from the Jinja2 templates in
``templates/``, with autoescaping on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .._version import __version__
from ..data.medmnist import MEDMNIST
from ..errors import DataError, MedclassError, RunFolderError
from ..evaluation.calibration import apply_temperature, bins_ece, reliability_bins
from ..evaluation.kinds import class_kind, get_kind
from ..run_folder import RunFolder, checkpoint_rule_text, read_predictions
from ..utils.io import atomic_write_text, read_json
from . import figures
from ._render import interval, num, pct, render
from .gallery import load_gallery
from .selection import auto_selection
from .wording import (
    OPERATING_POINT_NAMES,
    TERMS,
    display_label,
    display_labels,
    low_threshold_note,
    metric_meaning,
    operating_point_meaning,
)

__all__ = ["build_report", "SECTIONS"]

log = logging.getLogger(__name__)

SECTIONS = ("summary", "intended-use", "data-card", "training", "metrics", "curves", "confusion", "operating-points",
            "calibration", "subgroups", "external", "robustness", "interpretation", "configuration", "environment")
MIN_PER_BIN = 20  # equal-count calibration bins hold at least this many images (at most 10 bins)
SPARSE_BIN = 10  # an equal-width bin with fewer images is drawn hollow, without a line through it

_METRIC_NAMES = [("auc", "ROC AUC"), ("average_precision", "average precision"), ("acc", "accuracy (MedMNIST)"),
                 ("balanced_accuracy", "balanced accuracy"), ("sensitivity", "sensitivity (recall)"),
                 ("specificity", "specificity"), ("ppv", "PPV (precision)"), ("npv", "NPV"), ("f1", "F1"),
                 ("brier", "Brier score"), ("quadratic_weighted_kappa", "quadratic weighted kappa (QWK)"),
                 ("mae", "mean absolute error"), ("rmse", "root mean squared error"), ("r2", "R²"),
                 ("pearson_r", "Pearson correlation")]
_KPIS = (("auc", "AUC"), ("acc", "accuracy"), ("sensitivity", "sensitivity"), ("specificity", "specificity"),
         ("quadratic_weighted_kappa", "QWK"), ("mae", "MAE"), ("r2", "R²"))


def build_report(run_dir: str | os.PathLike, split: str = "test", out: str | os.PathLike | None = None, *,
                 gallery_builder: Callable[[Path, str], Any] | None = None) -> Path:
    """Write ``report.html`` for a complete, scored run and return its path.

    Args:
        run_dir: a finished run folder.
        split: the split the report presents (``metrics/<split>.json`` must exist).
        out: where to write the page (default ``<run_dir>/report.html``).
        gallery_builder: ``fn(run_dir, split)`` that builds the heatmap gallery when it is missing or older than the
            split's predictions (:func:`medclass.runs.report.write_report` passes one). Without one, or when it
            fails, the report says which command builds it.

    Raises:
        RunFolderError: the run is unfinished, or ``metrics/<split>.json`` has not been written yet.

    Example:
        >>> build_report("runs/b0")  # doctest: +SKIP
        PosixPath('runs/b0/report.html')
    """
    folder = RunFolder(run_dir).require_complete()
    mpath = folder.metrics(split)
    if not mpath.is_file():
        raise RunFolderError(f"Run '{folder.path}' has no metrics for the {split} split yet. "
                             f"Score it first: medclass evaluate {folder.path} --split {split}")
    m = read_json(mpath)
    if "intervals" not in m and "heads" not in m:
        raise RunFolderError(f"'{mpath}' was written by an older medclass without confidence intervals. "
                             f"Re-score it: medclass evaluate {folder.path} --split {split}")
    cfg = yaml.safe_load(folder.config.read_text())
    card = read_json(folder.dataset_card)
    status = folder.read_status()
    names = _class_names(card, m)
    auto = auto_selection(folder.path)  # the leaderboard, when medclass auto chose this model
    nav = [(s, s.replace("-", " ")) for s in SECTIONS[1:]]
    context = {
        "title": f"medclass report: {card['name']} ({folder.path.name})",
        "header": _header(folder, cfg, status, card),
        "nav": nav[:2] + [("model-selection", "model selection")] + nav[2:] if auto else nav,
        "auto": auto,
        "unit": card.get("unit", "image"),  # what one example is: image, or volume (3D datasets)
        "summary": _summary(m, split, names),
        "intended": _intended_use(card, split),
        "data_card": _data_card(card),
        "training": _training(folder.read_history(), status),
        "metrics": _metrics(m, split, folder, names, card),
        "curves": _curves(m, names),
        "confusion": _confusion(m, card),
        "operating_points": _operating_points(m, names, cfg),
        "calibration": _calibration(m, folder, split, names),
        "subgroups": _subgroups(m),
        "external": _external(folder, names),
        "robustness": _robustness(folder, split, m, names),
        "interpretation": _interpretation(folder, split, card, gallery_builder),
        "configuration": yaml.safe_dump(cfg, sort_keys=False),
        "environment": json.dumps(read_json(folder.environment), indent=2),
        "generated": f"medclass {__version__} on {time.strftime('%Y-%m-%d %H:%M')}",
    }
    target = Path(out) if out else folder.path / "report.html"
    atomic_write_text(target, render("report.html", **context))
    return target


def _class_names(card: dict, m: dict) -> dict:
    """Display names of the positive and negative class (binary), the prevalence, and the bootstrap unit."""
    boot = m.get("bootstrap") or next((h.get("bootstrap") for h in m.get("heads", {}).values()), None) or {}
    out = {"pos": "positive", "neg": "negative", "pos_idx": None, "prevalence": None, "task": card["task"],
           "unit": boot.get("unit", "image"), "replicates": boot.get("replicates", "n/a"), "labels": card["labels"]}
    if get_kind(card["task"]).has_positive_class and "positive_class" in m:
        pos_idx = 1 if card.get("positive_label") is None else int(card["positive_label"])
        out.update(pos=display_label(card["labels"][pos_idx]), neg=display_label(card["labels"][1 - pos_idx]),
                   pos_idx=pos_idx, prevalence=(m["tp"] + m["fn"]) / m["n"] if m.get("n") else None)
    return out


def _header(folder: RunFolder, cfg: dict, status: dict, card: dict) -> dict:
    info = MEDMNIST.get(card["name"])
    return {"dataset": info.title if info else card["name"], "model": cfg["model"]["name"],
            "recipe": cfg.get("recipe", ""), "run": str(folder.path), "seed": cfg["seed"],
            "finished": status.get("finished", "?")}


def _summary(m: dict, split: str, names: dict) -> dict:
    iv = m.get("intervals", {})
    if "heads" in m:
        kpis = [{"name": f"AUC, {head}", "value": num(h.get("auc")), "interval": "",
                 "meaning": "One task of this multi-task model; its details are under Metrics."}
                for head, h in m["heads"].items()]
    else:
        kpis = [{"name": name, "value": num(iv[k]["estimate"]),
                 "interval": f"{num(iv[k]['low'])} – {num(iv[k]['high'])}",
                 "meaning": metric_meaning(k, names["task"], names["pos"], names["neg"], names["prevalence"])}
                for k, name in _KPIS if k in iv]
    in_words = None
    if names["pos_idx"] is not None and all(k in m for k in ("tp", "fn", "tn", "fp")):
        in_words = {"pos": names["pos"], "neg": names["neg"], "threshold": m.get("threshold", 0.5),
                    "positives": m["tp"] + m["fn"], "tp": m["tp"], "fn": m["fn"],
                    "negatives": m["tn"] + m["fp"], "tn": m["tn"], "fp": m["fp"],
                    "sensitivity": pct(m.get("sensitivity")), "specificity": pct(m.get("specificity"))}
    return {"split": split, "n": m["n"], "epoch": m["checkpoint"]["epoch"],
            "rule": checkpoint_rule_text(m["checkpoint"]), "positive": names["pos"] if names["pos_idx"] is not None
            else None, "kpis": kpis, "in_words": in_words, "interval_meaning": _interval_meaning(names),
            "warnings": [w["message"] for w in m.get("warnings", ())], "warnings_meaning": TERMS["unreliable"],
            "label_shift": _label_shift(m, names)}


def _label_shift(m: dict, names: dict) -> dict | None:
    """``evaluate --label-shift``: the estimated class balance and the adapted metrics, disclosed as such."""
    ls = m.get("label_shift")
    if not ls:
        return None
    method = {"em": "expectation-maximisation (Saerens et al. 2002)",
              "bbse": "black-box shift estimation (Lipton et al. 2018)"}.get(ls["method"], ls["method"])
    iv = ls.get("intervals", {})
    rows = [{"name": label, "plain": num(m.get(k)), "adapted": num(ls["metrics"].get(k)),
             "interval": f"{num(iv[k]['low'])} – {num(iv[k]['high'])}" if k in iv else ""}
            for k, label in (("acc", "accuracy"), ("sensitivity", "sensitivity"), ("specificity", "specificity"),
                             ("auc", "AUC")) if k in ls["metrics"]]
    shares = [{"cls": display_label(c), "val": pct(a, 1), "estimated": pct(b, 1), "observed": pct(o, 1)}
              for c, a, b, o in zip(names["labels"], ls["source_priors"], ls["estimated_priors"],
                                    ls["observed_priors"])]
    return {"method": method, "rows": rows, "shares": shares}


def _interval_meaning(names: dict) -> str:
    return TERMS["interval"].format(unit=names["unit"], replicates=names["replicates"])


def _intended_use(card: dict, split: str) -> dict:
    info = MEDMNIST.get(card["name"])
    size = card.get("size")
    channels = card.get("channels")
    colour = {1: "greyscale (1 channel)", 3: "colour (3 channels)"}.get(channels, f"{channels} channels")
    splits = [{"name": s, "n": c["n"]} for s, c in card["splits"].items()]
    side = f"{size} × {size} × {size} voxels" if card.get("spatial_dims") == 3 else f"{size} × {size} pixels"
    return {"resolution": side if size else "unknown", "colour": colour,
            "dataset": info.title if info else card["name"], "modality": info.modality if info else None,
            "medmnist": info is not None, "splits": splits, "split": split, "source": card.get("source") or None,
            "licence": card.get("license") or "unknown",
            "labels": display_labels(card["labels"])}


def _leakage_note(leak: Any) -> dict:
    if not leak:
        return {"kind": "note", "text": "Leakage check: not run for this dataset. The MedMNIST files carry no "
                                        "patient identifiers, so patient overlap between the official splits "
                                        "cannot be verified."}
    if isinstance(leak, str):  # run folders from before the checks
        return {"kind": "plain", "text": f"Leakage check: {leak}"}
    if leak.get("patients_checked") is False:
        what = ("no identical or near-identical image is shared across the published splits" if leak["ok"] else
                f"the published splits share {leak.get('duplicate', 0)} group(s) of identical and "
                f"{leak.get('near-duplicate', 0)} group(s) of near-identical images (kept as published; "
                f"listed in leakage.json)")
        return {"kind": "note", "text": f"Leakage check: {what}. Patients cannot be checked: the MedMNIST files "
                                        f"carry no patient identifiers."}
    if leak["ok"]:
        return {"kind": "plain", "text": "Leakage check: passed. No patient, identical image or near-identical image "
                                         "is shared across splits."}
    return {"kind": "note", "text": f"Leakage check: {leak['leaks']} leak(s) across splits (patients or images), "
                                    f"accepted with data.leakage={leak['policy']}; listed in leakage.json. "
                                    f"Validation and test results may be optimistic."}


def _data_card(card: dict) -> dict:
    labels = display_labels(card["labels"])
    rows = []
    for split, c in card["splits"].items():
        counts = c.get("per_class") or c.get("positives_per_label") or sum(c.get("per_head", []), [])
        text = ", ".join(f"{lab}: {n}" for lab, n in zip(labels, counts))
        if c.get("mean") is not None:  # regression
            text = f"mean {num(c['mean'])}, sd {num(c['sd'])}"
        rows.append({"split": split, "n": c["n"], "text": text})
    return {"name": card["name"], "task": card["task"], "channels": card["channels"], "size": card["size"],
            "labels": [{"index": i, "name": d, "stored": s if s != d else None}
                       for i, (s, d) in enumerate(zip(card["labels"], labels))],
            "rows": rows, "leakage": _leakage_note(card.get("leakage")),
            "licence": card.get("license", "unknown"), "citation": card.get("citation", "")}


def _training(history: list[dict], status: dict) -> dict:
    if not history:
        return {"figure": None}
    return {"figure": figures.training_curves(history, status.get("best_epoch")),
            "epochs": status.get("epochs_completed"), "seconds": num(status.get("train_seconds"), 0),
            "speed": num(status.get("images_per_s"), 0), "stopped_early": bool(status.get("stopped_early")),
            "best_epoch": status.get("best_epoch")}


def _metric_table(m: dict, task: str, pos: str, neg: str, prevalence: float | None) -> dict:
    iv = m["intervals"]
    rows = [{"name": name, "estimate": num(iv[k]["estimate"]), "low": num(iv[k]["low"]), "high": num(iv[k]["high"]),
             "undefined": iv[k]["n_undefined"], "undefined_share": _share(iv[k]),
             "meaning": metric_meaning(k, task, pos, neg, prevalence)}
            for k, name in _METRIC_NAMES if k in iv]
    first = next(iter(iv.values()))
    return {"rows": rows, "n_boot": first["n_boot"], "seed": m["bootstrap"]["seed"],
            "positive": display_label(m["positive_class"]) if "positive_class" in m else None,
            "threshold": m.get("threshold"), "any_undefined": any(r["undefined"] for r in rows)}


def _share(iv: dict) -> str:
    """The share of undefined replicates as a reader sees it ("48%", "<1%"; "" when there were none)."""
    n, share = iv.get("n_undefined", 0), iv.get("undefined_share")
    if not n:
        return ""
    share = n / iv["n_boot"] if share is None else share  # metrics written before the share was recorded
    return "<1%" if share < 0.005 else f"{100 * share:.0f}%"


def _metrics(m: dict, split: str, folder: RunFolder, names: dict, card: dict) -> dict:
    out: dict[str, Any] = {"split": split, "validation": None, "taxonomy": None, "heads": None,
                           "undefined_meaning": TERMS["undefined"].format(pos=names["pos"])}
    if "heads" in m:  # multi-task: one table per head
        heads = []
        for name, h in m["heads"].items():
            binary = "positive_class" in h
            labels = [display_label(c.split(":", 1)[1]) for c in card["labels"] if c.startswith(f"{name}:")]
            pos = display_label(h["positive_class"]) if binary else "positive"
            neg = next((lab for lab in labels if lab != pos), "negative") if binary else "negative"
            prev = (h["tp"] + h["fn"]) / h["n"] if binary and h.get("n") else None
            heads.append({"name": name, "table": _metric_table(h, class_kind(len(labels)).name, pos, neg,
                                                               prev)})
        out["heads"] = heads
        return out
    out["table"] = _metric_table(m, names["task"], names["pos"], names["neg"], names["prevalence"])
    val = folder.metrics("val")
    if split != "val" and val.is_file():
        v = read_json(val)
        keys = ("mae", "r2") if "r2" in v else ("auc", "acc")
        out["validation"] = ", ".join(f"{k} {num(v.get(k))}" for k in keys) + f", n = {v.get('n')}"
    if m.get("taxonomy"):
        t = m["taxonomy"]
        out["taxonomy"] = {"groups": [{"name": display_label(c), "children": " + ".join(display_labels(kids))}
                                      for c, kids in t["children"].items()],
                           "table": _metric_table(t, "multiclass", "positive", "negative", None)}
    return out


def _curves(m: dict, names: dict) -> dict:
    if not m.get("curves"):
        return {"figure": None}
    png = figures.roc_pr_curves(m["curves"], m["intervals"]["auc"], m["intervals"].get("average_precision"),
                                [g["point"] for g in _merged_points(m.get("operating_points", []))])
    return {"figure": png, "roc": TERMS["roc"], "pr": TERMS["pr"].format(pos=names["pos"])}


def _confusion(m: dict, card: dict) -> dict:
    if not m.get("confusion_matrix"):
        return {"figure": None}
    return {"figure": figures.confusion_matrices(m["confusion_matrix"], display_labels(card["labels"])),
            "meaning": TERMS["confusion"]}


def _merged_points(ops: list[dict]) -> list[dict]:
    """Operating points grouped by threshold: two rules that chose the same threshold are one row."""
    groups: list[dict] = []
    for o in ops:
        same = next((g for g in groups if math.isclose(g["point"]["threshold"], o["threshold"], rel_tol=0,
                                                       abs_tol=1e-12)), None)
        if same:
            same["names"].append(o["name"])
        else:
            groups.append({"point": dict(o), "names": [o["name"]]})
    for g in groups:
        g["point"]["label"] = " = ".join(OPERATING_POINT_NAMES.get(n, n) for n in g["names"])
    return groups


def _cell(iv: dict | None) -> dict | None:
    """An interval as a table cell: the estimate, and the interval on a line of its own."""
    return {"estimate": num(iv["estimate"]), "range": f"{num(iv['low'])}–{num(iv['high'])}"} if iv else None


def _operating_points(m: dict, names: dict, cfg: dict) -> dict | None:
    ops = m.get("operating_points")
    if not ops:
        return None
    ev = cfg.get("eval", {})
    pos, neg = names["pos"], names["neg"]
    rows, notes = [], []
    for g in _merged_points(ops):
        o = g["point"]
        rows.append({"label": o["label"],
                     "meanings": [operating_point_meaning(n, pos, neg, ev.get("sensitivity_target", 0.95),
                                                          ev.get("specificity_target", 0.95)) for n in g["names"]],
                     "rules": [op["rule"] for op in ops if op["name"] in g["names"]],
                     "threshold": num(o["threshold"]),
                     "val": f"{num(o['val']['sensitivity'])} / {num(o['val']['specificity'])}",
                     **{k: _cell(o[k]) for k in ("sensitivity", "specificity", "ppv", "npv", "f1")}})
        if len(g["names"]) > 1:
            notes.append(f"{' and '.join(OPERATING_POINT_NAMES.get(n, n) for n in g['names'])} chose the same "
                         f"threshold ({num(o['threshold'])}) on validation, so they are shown as one row.")
        low = low_threshold_note(o["threshold"], g["names"], pos, neg)
        if low:
            notes.append(low)
    return {"rows": rows, "notes": notes, "pos": pos, "threshold_meaning": TERMS["threshold"].format(pos=pos)}


def _calibration(m: dict, folder: RunFolder, split: str, names: dict) -> dict | None:
    cal = m.get("calibration")
    if not cal:
        return None
    stored = cal["reliability"]  # ten equal-width bins, as metrics/<split>.json keeps them
    bins, scaled_bins, strategy = stored, cal.get("temperature", {}).get("reliability"), "equal-width"
    try:
        y, p, _ = read_predictions(folder.predictions(split))
    except (DataError, OSError, ValueError) as e:
        log.info("calibration drawn from the stored equal-width bins (%s)", e)
    else:
        pos = names["pos_idx"]
        y_pos = (y == pos).astype(int)
        n_bins = max(2, min(10, len(y) // MIN_PER_BIN))
        bins, strategy = reliability_bins(y_pos, p[:, pos], n_bins, strategy="quantile"), "equal-count"
        if "temperature" in cal:
            scaled = apply_temperature(p, cal["temperature"]["t"])[:, pos]
            scaled_bins = reliability_bins(y_pos, scaled, n_bins, strategy="quantile")
    ece = bins_ece(bins)
    series = [(f"model, ECE {ece:.3f}", bins)]
    temperature = None
    if "temperature" in cal and scaled_bins:
        t = cal["temperature"]
        series.append((f"temperature-scaled (T = {t['t']:.2f}), ECE {bins_ece(scaled_bins):.3f}", scaled_bins))
        temperature = {"t": num(t["t"], 2), "brier": num(t["brier"]), "ece": num(bins_ece(scaled_bins)),
                       "ece_stored": num(t["ece"])}
    rows = []
    for k, c in enumerate(bins["count"]):
        if not c:
            continue
        obs, lo, hi = bins["observed"][k], bins["edges"][k], bins["edges"][k + 1]
        rows.append({"range": f"{pct(lo, 1)} – {pct(hi, 1)}", "n": c, "predicted": pct(bins["mean_predicted"][k], 1),
                     "observed": f"{round(obs * c)} of {c} ({pct(obs, 0)})", "sparse": c < SPARSE_BIN})
    brier_iv = m.get("intervals", {}).get("brier")
    return {"figure": figures.reliability_diagram(series, stored, min_count=SPARSE_BIN), "strategy": strategy,
            "n_bins": len(bins["count"]), "ece": num(ece), "ece_stored": num(cal["ece"]),
            "brier": interval(brier_iv) if brier_iv else num(cal["brier"]), "rows": rows, "pos": names["pos"],
            "temperature": temperature, "sparse_bin": SPARSE_BIN,
            "meaning": TERMS["calibration"].format(pos=names["pos"]),
            "brier_meaning": metric_meaning("brier", "binary", names["pos"], names["neg"], names["prevalence"]),
            "ece_meaning": TERMS["ece"].format(pos=names["pos"]), "temperature_meaning": TERMS["temperature"]}


def _subgroups(m: dict) -> dict | None:
    sg = m.get("subgroups")
    if not sg:
        return None
    tables = [{"column": col, "rows": [{"value": r["value"], "n": r["n"],
                                        **{k: _cell(r["intervals"].get(k)) for k in ("auc", "sensitivity",
                                                                                     "specificity")},
                                        "warning": r.get("warning")} for r in rows]}
              for col, rows in sg.items()]
    return {"tables": tables, "meaning": TERMS["subgroups"]}


def _external(folder: RunFolder, names: dict) -> list[dict]:
    """One block per external set scored with ``medclass evaluate RUN --manifest`` (metrics/external-*.json)."""
    out = []
    for path in sorted((folder.path / "metrics").glob("external-*.json")):
        m = read_json(path)
        ext, shift = m.get("external", {}), m.get("shift", {})
        iv = m.get("intervals", {})
        rows = [{"name": label, "value": _cell(iv.get(key)) or {"estimate": num(m.get(key)), "range": ""}}
                for key, label in (("auc", "AUC"), ("acc", "accuracy"), ("sensitivity", "sensitivity"),
                                   ("specificity", "specificity")) if key in m]
        prev = shift.get("prevalence")
        prevalence = None if not prev else [
            {"cls": display_label(c), "train": pct(a), "new": pct(b), "n": n}
            for c, a, b, n in zip(prev["classes"], prev["train_share"], prev["new_share"], prev["new_counts"])]
        inten = shift.get("intensity", {})
        intensity = None if not inten.get("train") else [
            {"channel": k, "train": f"{inten['train']['mean'][k]:.3f} ± {inten['train']['sd'][k]:.3f}",
             "new": f"{inten['new']['mean'][k]:.3f} ± {inten['new']['sd'][k]:.3f}",
             "smd": num(inten["standardised_mean_difference"][k], 2)} for k in range(len(inten["train"]["mean"]))]
        cal = _external_calibration(shift.get("calibration"))
        size = (shift.get("size") or {}).get("new") or {}
        out.append({"name": ext.get("name", path.stem), "n": m.get("n"), "bad": ext.get("n_bad_rows", 0),
                    "unit": (m.get("bootstrap") or {}).get("unit", "image"), "rows": rows,
                    "prevalence": prevalence, "intensity": intensity, "calibration": cal,
                    "size": size.get("size", {}).get("median"), "spacing": size.get("spacing_mm", {}).get("median"),
                    "kinds": shift.get("file_kinds"), "pipeline": ext.get("pipeline"), "pos": names["pos"]})
    return out


def _external_calibration(cal: dict | None) -> dict | None:
    """The calibration-at-operating-points block in words a reader takes in: rates as percentages, expected
    positives as a whole number, and points that share a threshold on one row (as in the operating-points table)."""
    if not cal:
        return None
    groups = _merged_points([{**r, "name": r["operating_point"]} for r in cal["at_operating_points"]])
    rows = [{"name": r["label"], "threshold": r["threshold"], "called": f"{r['called_positive']} of {r['n']}",
             "observed": r["observed_positive"], "val_called": pct(r.get("val_called_positive_rate"), 1),
             "val_observed": pct(r.get("val_observed_positive_rate"), 1)} for r in (g["point"] for g in groups)]
    return {"mean": pct(cal.get("mean_predicted_probability"), 1), "observed": pct(cal.get("observed_prevalence"), 1),
            "expected": f"{cal['expected_positives']:.0f}", "observed_n": cal.get("observed_positives"), "rows": rows}


def _robustness(folder: RunFolder, split: str, m: dict, names: dict) -> dict:
    """``metrics/corruptions-<split>.json`` (``medclass evaluate --corruptions``) as a table and a figure, or the
    command that writes it."""
    path = folder.metrics(f"corruptions-{split}")
    if not path.is_file():
        return {"rows": None, "command": f"medclass evaluate {folder.path} --corruptions --split {split}"}
    r = read_json(path)
    sev = r["severities"]

    def cells(c: dict) -> list[dict]:
        hi = c.get("auc_change_high") or [None] * len(sev)
        return [{"auc": num(c["auc"][i]), "acc": num(c["acc"][i]),
                 "worse": hi[i] is not None and not math.isnan(hi[i]) and hi[i] < 0} for i in range(len(sev))]

    rows = [{"name": name, "family": c["family"], "cells": cells(c), "mean": f"{num(c['mean_auc'])} / "
                                                                          f"{num(c['mean_acc'])}"}
            for name, c in r["corruptions"].items()]
    clean = r["clean"]
    ops = None
    if "operating_points" in clean and "default" in clean["operating_points"]:
        def rates(d: dict, i: int | None = None) -> str:
            s, p = (d["sensitivity"], d["specificity"]) if i is None else (d["sensitivity"][i], d["specificity"][i])
            return f"{pct(s)} / {pct(p)}"
        ops = {"threshold": num(clean["operating_points"]["default"]["threshold"], 2), "pos": names["pos"],
               "clean": rates(clean["operating_points"]["default"]),
               "rows": [{"name": name, "cells": [rates(c["operating_points"]["default"], i) for i in range(len(sev))]}
                        for name, c in r["corruptions"].items() if "operating_points" in c]}
    notes = []
    if m.get("checkpoint", {}).get("epoch") != r.get("checkpoint", {}).get("epoch"):
        notes.append(f"These corruption results were computed with the checkpoint of epoch "
                     f"{r.get('checkpoint', {}).get('epoch')}, not the one scored above; re-run "
                     f"medclass evaluate {folder.path} --corruptions --split {split}.")
    return {"rows": rows, "severities": sev, "set": r["corruption_set"], "n": r["n"],
            "clean": f"{num(clean['auc'])} / {num(clean['acc'])}",
            "clean_interval": f"{num(clean['auc_low'])} – {num(clean['auc_high'])}" if "auc_low" in clean else None,
            "mean": [f"{num(a)} / {num(b)}" for a, b in zip(r["mean"]["auc"], r["mean"]["acc"])],
            "replicates": r.get("bootstrap", {}).get("replicates"), "seed": r.get("seed"),
            "figure": figures.corruption_curves(r), "operating_points": ops, "skipped": r.get("skipped", {}),
            "size_note": r.get("size_note"), "source": r["source"], "notes": notes, "command": None}


def _interpretation(folder: RunFolder, split: str, card: dict, build: Callable[[Path, str], Any] | None) -> dict:
    """The gallery of ``split``: reused when fresh, built when allowed, otherwise the command that builds it."""
    command = f"medclass explain {folder.path} --gallery --split {split}"
    if not get_kind(card["task"]).single_label:
        return {"gallery": None, "message": f"The heatmap gallery covers single-label tasks; for this "
                                            f"{card['task']} run, explain images one output at a time: "
                                            f"medclass explain {folder.path} IMAGE --class K.", "command": None}
    if card.get("unit") == "case":
        return {"gallery": None, "command": None,
                "message": f"Heatmaps are not built for cases of several images yet ({len(card.get('views', []))} "
                           f"views per case); the metrics above are per case."}
    gallery = load_gallery(folder.path, split)
    if gallery is not None:
        return {"gallery": gallery, "message": None, "command": None}
    if not folder.predictions(split).is_file():
        return {"gallery": None, "command": f"medclass evaluate {folder.path} --split {split}",
                "message": f"No heatmaps: the {split} split has no saved predictions to choose images from. "
                           f"Score it, then build the report again:"}
    if build is None:
        return {"gallery": None, "command": command,
                "message": "No heatmaps were generated for this run yet. Build them with:"}
    try:
        log.info("building the heatmap gallery of %s (%s split)", folder.path, split)
        build(folder.path, split)
    except (MedclassError, OSError) as e:
        log.warning("heatmap gallery not built: %s", e)
        return {"gallery": None, "command": command + " --data-dir DIR",
                "message": f"The heatmap gallery could not be built ({e}). Once the dataset files are in reach, "
                           f"build it with:"}
    return {"gallery": load_gallery(folder.path, split), "message": None, "command": None}


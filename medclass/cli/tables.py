"""Plain-text tables for the terminal."""

from __future__ import annotations

import math
from typing import Any

from ..run_folder import checkpoint_rule_text

_NAMES = [("auc", "AUC"), ("acc", "ACC"), ("balanced_accuracy", "balanced accuracy"),
          ("average_precision", "average precision"), ("sensitivity", "sensitivity"), ("specificity", "specificity"),
          ("ppv", "PPV"), ("npv", "NPV"), ("f1", "F1"), ("brier", "Brier score"),
          ("quadratic_weighted_kappa", "quadratic weighted kappa"), ("mean_absolute_grade_error", "grade MAE"),
          ("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R^2"), ("pearson_r", "Pearson r"), ("spearman_r", "Spearman r")]


def _num(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def _ci(iv: dict) -> str:
    share = iv.get("undefined_share", 0)
    undefined = f"  ({100 * share:.0f}% of replicates undefined)" if share >= 0.005 else ""
    return f"[{_num(iv['low'])}, {_num(iv['high'])}]{undefined}"


def metrics_table(m: dict[str, Any]) -> str:
    """The headline numbers of one evaluation, with 95% intervals when present, as an aligned table."""
    ck = m.get("checkpoint")
    where = f", checkpoint epoch {ck.get('epoch')}: {checkpoint_rule_text(ck)}" if ck else ""
    title = f"{m.get('dataset', '')} / {m.get('split', '')}  (n={m['n']}{where})"
    iv = m.get("intervals", {})
    rows = []
    for key, name in _NAMES:
        if key in iv:
            rows.append((name, _num(iv[key]["estimate"]), _ci(iv[key])))
        elif key in m:
            rows.append((name, _num(m[key]), ""))
    if not rows:
        rows.append(("n", str(m["n"]), ""))
    width = max(len(r[0]) for r in rows)
    lines = [title, "-" * len(title)]
    lines += [f"warning: {w['message']}" for w in m.get("warnings", ())]
    if "positive_class" in m:
        lines.append(f"positive class: {m['positive_class']}")
    head = f"{'':<{width}}  estimate  95% interval" if iv else ""
    lines += ([head] if head else []) + [f"{n:<{width}}  {v:<8}  {c}".rstrip() for n, v, c in rows]
    ops = m.get("operating_points")
    if ops:
        lines.append("operating points (thresholds chosen on validation, applied here)")
        lines.append(simple_table(["point", "threshold", "sensitivity", "specificity", "PPV", "NPV"],
                                  [[o["name"], o["threshold"], *[o[k]["estimate"] for k in
                                                                 ("sensitivity", "specificity", "ppv", "npv")]]
                                   for o in ops]))
    cm = m.get("confusion_matrix")
    if cm and len(cm) <= 12:
        lines.append("confusion matrix (rows: true class, columns: predicted)")
        w = max(len(str(x)) for row in cm for x in row)
        lines += ["  " + " ".join(f"{x:>{w}}" for x in row) for row in cm]
    for name, head in m.get("heads", {}).items():  # multi-task: one block per head (its warnings are listed above)
        lines += ["", metrics_table({**head, "warnings": [], "dataset": m.get("dataset", ""),
                                     "split": f"{m.get('split', '')} / head {name}"})]
    if m.get("taxonomy"):
        t = m["taxonomy"]
        groups = "; ".join(f"{c} = {' + '.join(kids)}" for c, kids in t["children"].items())
        lines += ["", metrics_table({**t, "dataset": m.get("dataset", ""), "split": f"{m.get('split', '')} / "
                                                                                  f"coarse classes"}),
                  f"({groups})"]
    return "\n".join(lines)


def simple_table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[_num(c) for c in r] for r in rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    out = ["  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths)).rstrip() for r in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def shift_table(shift: dict[str, Any]) -> str:
    """What differs between the training data and an external set: prevalence, intensity, size, calibration."""
    lines = ["what shifted between the training data and this set"]
    prev = shift.get("prevalence")
    if prev:
        lines.append(simple_table(["class", "train share", "this set", "n here"],
                                  [[c, a, b, n] for c, a, b, n in zip(prev["classes"], prev["train_share"],
                                                                      prev["new_share"], prev["new_counts"])]))
    inten = shift.get("intensity", {})
    if inten.get("train"):
        t, n = inten["train"], inten["new"]
        lines.append(simple_table(["channel", "train mean", "this set", "train sd", "this set sd", "SMD"],
                                  [[k, t["mean"][k], n["mean"][k], t["sd"][k], n["sd"][k],
                                    inten["standardised_mean_difference"][k]] for k in range(len(t["mean"]))]))
        lines.append("(intensities of the preprocessed images in [0, 1]; SMD = difference of means in training sds)")
    size = shift.get("size", {})
    new = size.get("new") or {}
    if new.get("size"):
        train = (size.get("train") or {}).get("size", {}).get("median")
        sp = new.get("spacing_mm", {}).get("median")
        lines.append(f"source size (median rows x cols): this set {new['size']['median']}"
                     + (f", training {train}" if train else "") + (f"; pixel spacing {sp} mm" if sp else ""))
    cal = shift.get("calibration")
    if cal:
        lines.append(f"mean predicted probability {cal['mean_predicted_probability']} vs observed prevalence "
                     f"{cal['observed_prevalence']} (expected {cal['expected_positives']} positives, observed "
                     f"{cal['observed_positives']})")
        lines.append(simple_table(["operating point", "threshold", "called positive", "observed positive",
                                   "val: called", "val: observed"],
                                  [[r["operating_point"], r["threshold"], r["called_positive"], r["observed_positive"],
                                    r["val_called_positive_rate"], r["val_observed_positive_rate"]]
                                   for r in cal["at_operating_points"]]))
    return "\n".join(lines)


def corruption_table(r: dict[str, Any]) -> str:
    """AUC / ACC per corruption and severity beside the clean score, a mean over severities per corruption and over
    corruptions per severity; ``*`` marks an AUC whose paired 95% interval of the change from clean lies below 0."""
    sev = [str(s) for s in r["severities"]]
    clean = r["clean"]

    def cell(c: dict, i: int) -> str:
        low = c.get("auc_change_high", [None] * len(sev))[i]
        flag = "*" if low is not None and not math.isnan(low) and low < 0 else " "
        return f"{_f3(c['auc'][i])}{flag}/ {_f3(c['acc'][i])}"

    ci = f" [{_f3(clean['auc_low'])}, {_f3(clean['auc_high'])}]" if "auc_low" in clean else ""
    rows = [["clean", "", f"{_f3(clean['auc'])} / {_f3(clean['acc'])}{ci}", *[""] * len(sev)]]
    for name, c in r["corruptions"].items():
        rows.append([name, c["family"], *(cell(c, i) for i in range(len(sev))),
                     f"{_f3(c['mean_auc'])} / {_f3(c['mean_acc'])}"])
    mean = r["mean"]
    rows.append(["mean over corruptions", "", *(f"{_f3(a)} / {_f3(b)}" for a, b in zip(mean["auc"], mean["acc"])),
                 ""])
    cs = r.get("corruption_set", {})
    lines = [f"{r['dataset']} / {r['split']} (n={r.get('n', '?')}): AUC / ACC under MedMNIST-C corruptions"]
    if cs:
        lines.append(f"set: {cs['name']} ({cs['modality']}), chosen by {cs['chosen_by']}")
    lines.append(simple_table(["corruption", "family", *[f"severity {s}" for s in sev], "mean"], rows))
    if any("auc_change_high" in c for c in r["corruptions"].values()):
        lines.append("* AUC lower than clean: the 95% paired bootstrap interval of the change lies below 0")
    for name, why in r.get("skipped", {}).items():
        lines.append(f"skipped {name}: {why}")
    if r.get("size_note"):
        lines.append(r["size_note"])
    lines.append(f"source: {r['source']}")
    return "\n".join(lines)


def _f3(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

"""Figures for the report, drawn with matplotlib from saved run files, returned as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["training_curves", "roc_pr_curves", "confusion_matrices", "reliability_diagram"]

_OP_STYLE = {"default": ("o", "tab:gray"), "youden": ("s", "tab:green"), "high_sensitivity": ("^", "tab:red"),
             "high_specificity": ("v", "tab:purple")}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _col(rows: Sequence[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])


def training_curves(history: Sequence[dict], best_epoch: int | None) -> bytes:
    """Train/validation loss and validation AUC/accuracy per epoch, best epoch marked."""
    ep = _col(history, "epoch")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(ep, _col(history, "train_loss"), label="train loss")
    a.plot(ep, _col(history, "val_loss"), label="validation loss")
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    b.plot(ep, _col(history, "val_auc"), label="validation AUC", color="tab:green")
    b.plot(ep, _col(history, "val_acc"), label="validation accuracy", color="tab:orange")
    b.set_xlabel("epoch")
    b.set_ylim(min(0.5, np.nanmin(_col(history, "val_acc")) - 0.02), 1.0)
    for ax in (a, b):
        if best_epoch:
            ax.axvline(best_epoch, color="k", ls=":", lw=1, label=f"best epoch ({best_epoch})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def roc_pr_curves(curves: dict, auc: dict, ap: dict | None, operating_points: Sequence[dict] = ()) -> bytes:
    """ROC and precision-recall curves of the positive class, operating points marked."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    roc, pr = curves["roc"], curves["pr"]
    a.plot(roc["x"], roc["y"], color="tab:blue",
           label=f"AUC {auc['estimate']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}]")
    a.plot([0, 1], [0, 1], color="0.7", ls="--", lw=1)
    a.set_xlabel("1 - specificity (false positive rate)")
    a.set_ylabel("sensitivity (true positive rate)")
    a.set_title("ROC curve")
    label = "AP" if ap is None else f"AP {ap['estimate']:.3f} [{ap['low']:.3f}, {ap['high']:.3f}]"
    b.step(pr["x"], pr["y"], where="post", color="tab:blue", label=label)
    b.axhline(curves["prevalence"], color="0.7", ls="--", lw=1, label=f"prevalence {curves['prevalence']:.2f}")
    b.set_xlabel("recall (sensitivity)")
    b.set_ylabel("precision (PPV)")
    b.set_title("Precision-recall curve")
    for op in operating_points:
        marker, color = _OP_STYLE.get(op["name"], ("o", "k"))
        sens, spec, ppv = op["sensitivity"]["estimate"], op["specificity"]["estimate"], op["ppv"]["estimate"]
        name = f"{op['name']} (t={op['threshold']:.2f})"
        a.plot(1 - spec, sens, marker=marker, color=color, ms=8, ls="none", label=name)
        if np.isfinite(ppv):
            b.plot(sens, ppv, marker=marker, color=color, ms=8, ls="none", label=name)
    for ax in (a, b):
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right" if ax is a else "lower left")
    return _png(fig)


def confusion_matrices(cm: Sequence[Sequence[int]], labels: Sequence[str]) -> bytes:
    """Counts and row-normalised (per true class) confusion matrices side by side."""
    m = np.asarray(cm, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    k = len(m)
    size = max(3.2, 0.55 * k + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    short = [lab if len(lab) <= 18 else lab[:16] + "…" for lab in labels[:k]]
    for ax, data, title, fmt in ((axes[0], m, "counts", "{:.0f}"), (axes[1], norm, "row-normalised", "{:.2f}")):
        ax.imshow(data, cmap="Blues", vmin=0, vmax=data.max() if data.max() > 0 else 1)
        for i in range(k):
            for j in range(k):
                ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if data[i, j] > 0.6 * data.max() else "black")
        ax.set_xticks(range(k), short, rotation=45 if k > 3 else 0, ha="right" if k > 3 else "center", fontsize=8)
        ax.set_yticks(range(k), short, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    return _png(fig)


def reliability_diagram(cal: dict) -> bytes:
    """Observed frequency against mean predicted probability per bin, with the bin counts below."""
    fig, (a, b) = plt.subplots(2, 1, figsize=(5, 5.2), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    a.plot([0, 1], [0, 1], color="0.7", ls="--", lw=1, label="perfect calibration")
    series = [("model", cal["reliability"], "tab:blue", cal["ece"])]
    if "temperature" in cal:
        series.append((f"temperature-scaled (T={cal['temperature']['t']:.2f})", cal["temperature"]["reliability"],
                       "tab:orange", cal["temperature"]["ece"]))
    for name, rel, color, ece in series:
        pts = [(m, o) for m, o in zip(rel["mean_predicted"], rel["observed"]) if m is not None]
        if pts:
            xs, ys = zip(*pts)
            a.plot(xs, ys, "o-", color=color, label=f"{name}, ECE {ece:.3f}")
    a.set_ylabel("observed frequency")
    a.set_title("Reliability diagram (positive class)")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    edges = np.asarray(cal["reliability"]["edges"])
    b.bar((edges[:-1] + edges[1:]) / 2, cal["reliability"]["count"], width=np.diff(edges) * 0.9, color="0.6")
    b.set_xlabel("predicted probability")
    b.set_ylabel("count")
    return _png(fig)

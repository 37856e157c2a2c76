"""Figures for the report, drawn with matplotlib from saved run files, returned as PNG bytes.

Every figure is a :class:`matplotlib.figure.Figure` made directly, without pyplot: no global figure state,
nothing to close, and the user's backend is left alone (importing this in a notebook does not switch it to Agg);
``Figure.savefig`` renders the PNG with matplotlib's own canvas whatever the backend.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["training_curves", "roc_pr_curves", "confusion_matrices", "reliability_diagram", "heatmap_overlay",
           "heatmap_panels", "volume_montage", "filter_grid", "activation_grid", "corruption_curves"]

_OP_STYLE = {"default": ("o", "tab:gray"), "youden": ("s", "tab:green"), "high_sensitivity": ("^", "tab:red"),
             "high_specificity": ("v", "tab:purple")}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _col(rows: Sequence[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])


def training_curves(history: Sequence[dict], best_epoch: int | None) -> bytes:
    """Train/validation loss and validation AUC/accuracy per epoch, best epoch marked."""
    ep = _col(history, "epoch")
    fig = Figure(figsize=(10, 3.6))
    a, b = fig.subplots(1, 2)
    a.plot(ep, _col(history, "train_loss"), label="train loss")
    a.plot(ep, _col(history, "val_loss"), label="validation loss")
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    if "val_r2" in history[0]:  # regression
        b.plot(ep, _col(history, "val_r2"), label="validation R²", color="tab:green")
        b.set_ylim(max(-1.0, np.nanmin(_col(history, "val_r2")) - 0.05), 1.0)
    else:
        b.plot(ep, _col(history, "val_auc"), label="validation AUC", color="tab:green")
        b.plot(ep, _col(history, "val_acc"), label="validation accuracy", color="tab:orange")
        b.set_ylim(min(0.5, np.nanmin(_col(history, "val_acc")) - 0.02), 1.0)
    b.set_xlabel("epoch")
    for ax in (a, b):
        if best_epoch:
            ax.axvline(best_epoch, color="k", ls=":", lw=1, label=f"best epoch ({best_epoch})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def roc_pr_curves(curves: dict, auc: dict, ap: dict | None, operating_points: Sequence[dict] = ()) -> bytes:
    """ROC and precision-recall curves of the positive class, operating points marked."""
    fig = Figure(figsize=(10, 4.2))
    a, b = fig.subplots(1, 2)
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
        name = f"{op.get('label', op['name'])} (t={op['threshold']:.2f})"
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
    short = [lab if len(lab) <= 18 else lab[:16] + "…" for lab in labels[:k]]
    wspace = 0.3 + 0.03 * max(len(s) for s in short)  # room for the right matrix's class names
    fig = Figure(figsize=(2 * size + 1.5, size))
    axes = fig.subplots(1, 2, gridspec_kw={"wspace": wspace})
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


def reliability_diagram(series: Sequence[tuple[str, dict]], histogram: dict, min_count: int = 10) -> bytes:
    """Observed frequency against mean predicted probability per bin, and how the predictions are spread.

    Args:
        series: ``(legend label, bins)`` per curve, bins as :func:`~medclass.evaluation.calibration.reliability_bins`
            returns them. A bin with fewer than ``min_count`` images is drawn hollow and no line runs
            through it; an empty bin is not drawn.
        histogram: equal-width bins (their ``edges`` and ``count``) of the predicted probabilities, drawn
            below as bars with the count written on each.
    """
    fig = Figure(figsize=(5.6, 5.8))
    a, b = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 1.2]}, sharex=True)
    a.plot([0, 1], [0, 1], color="0.7", ls="--", lw=1, label="perfect calibration")
    for (name, rel), color in zip(series, ("tab:blue", "tab:orange", "tab:green")):
        counts = np.asarray(rel["count"])
        xs = np.array([np.nan if v is None else v for v in rel["mean_predicted"]], dtype=float)
        ys = np.array([np.nan if v is None else v for v in rel["observed"]], dtype=float)
        dense = counts >= min_count
        for k in range(len(xs) - 1):  # lines only between adjacent bins that both hold enough images
            if dense[k] and dense[k + 1]:
                a.plot(xs[k:k + 2], ys[k:k + 2], "-", color=color, lw=1.5)
        sparse = (counts > 0) & ~dense  # empty bins are not drawn at all
        a.plot(xs[dense], ys[dense], "o", color=color, ms=6, label=name)
        if sparse.any():
            a.plot(xs[sparse], ys[sparse], "o", mfc="white", mec=color, ms=6,
                   label=f"fewer than {min_count} images in the bin")
    a.set_ylabel("observed frequency")
    a.set_title("Reliability diagram (positive class)")
    a.set_xlim(-0.02, 1.02)
    a.set_ylim(-0.02, 1.02)
    a.legend(fontsize=7, loc="upper left")
    a.grid(alpha=0.3)
    edges, counts = np.asarray(histogram["edges"]), np.asarray(histogram["count"])
    centres = (edges[:-1] + edges[1:]) / 2
    b.bar(centres, counts, width=np.diff(edges) * 0.9, color="0.65")
    for x, c in zip(centres, counts):
        b.text(x, c, str(int(c)), ha="center", va="bottom", fontsize=7)
    b.set_ylim(0, max(1, counts.max()) * 1.3)
    b.set_xlabel("predicted probability")
    b.set_ylabel("images")
    return _png(fig)


def _show_image(ax, image: np.ndarray) -> None:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, title: str, alpha: float = 0.45) -> bytes:
    """The image (uint8, ``(H, W)`` or ``(H, W, C)``) with a heatmap in [0, 1] over it and a colour bar."""
    fig = Figure(figsize=(6.4, 3.2))
    a, b = fig.subplots(1, 2)
    _show_image(a, image)
    a.set_title("image", fontsize=9)
    _show_image(b, image)
    im = b.imshow(heatmap, cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear")
    b.set_title(title, fontsize=9)
    for ax in (a, b):
        ax.axis("off")
    fig.colorbar(im, ax=b, fraction=0.046, pad=0.04, label="importance")
    return _png(fig)


def heatmap_panels(image: np.ndarray, panels: Sequence[tuple[np.ndarray, str, bool]], alpha: float = 0.45) -> bytes:
    """The image, then one overlay per ``(heatmap in [0, 1], title, blank)``; an empty (blank) map is drawn as
    the bare image marked "empty map", not as a uniform colour that would look like evidence."""
    fig = Figure(figsize=(3.0 * (len(panels) + 1) + 0.6, 3.2))
    axes = fig.subplots(1, len(panels) + 1, squeeze=False)
    axes = axes[0]
    _show_image(axes[0], image)
    axes[0].set_title("image", fontsize=9)
    im = None
    for ax, (heatmap, title, blank) in zip(axes[1:], panels):
        _show_image(ax, image)
        if blank:
            ax.text(0.5, 0.5, "empty map", transform=ax.transAxes, ha="center", va="center", fontsize=10,
                    color="black", bbox={"boxstyle": "round", "fc": "white", "ec": "0.5", "alpha": 0.85})
        else:
            im = ax.imshow(heatmap, cmap="jet", alpha=alpha, vmin=0, vmax=1, interpolation="bilinear")
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=list(axes), fraction=0.02, pad=0.02, label="importance")
    return _png(fig)


def volume_montage(volume: np.ndarray, heatmap: np.ndarray, title: str, max_slices: int = 16,
                   alpha: float = 0.45) -> bytes:
    """A 3D volume ``(D, H, W)`` and its heatmap as a grid of axial slices, heatmap overlaid."""
    d = volume.shape[0]
    idx = np.unique(np.linspace(0, d - 1, min(max_slices, d)).astype(int))
    cols = int(np.ceil(np.sqrt(len(idx))))
    rows = int(np.ceil(len(idx) / cols))
    fig = Figure(figsize=(2 * cols + 0.8, 2 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    vmin, vmax = float(np.min(volume)), float(np.max(volume))
    im = None
    for ax, k in zip(axes.ravel(), idx):
        ax.imshow(volume[k], cmap="gray", vmin=vmin, vmax=vmax)
        im = ax.imshow(heatmap[k], cmap="jet", alpha=alpha, vmin=0, vmax=1)
        ax.set_title(f"slice {k}", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, label="importance")
    return _png(fig)


def filter_grid(weights: np.ndarray, title: str) -> bytes:
    """First-layer filters ``(out, in, kh, kw)``: one tile per filter (RGB when in=3, else channel mean)."""
    w = weights.mean(1) if weights.shape[1] != 3 else np.transpose(weights, (0, 2, 3, 1))
    n = len(w)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(cols * 0.9 + 0.5, rows * 0.9 + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, f in zip(axes.ravel(), w):
        f = (f - f.min()) / (f.max() - f.min() + 1e-12)
        ax.imshow(f, cmap=None if f.ndim == 3 else "gray", interpolation="nearest")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def activation_grid(acts: np.ndarray, title: str, max_maps: int = 64) -> bytes:
    """Activation maps ``(channels, H, W)`` of one layer for one image, the strongest ``max_maps`` first."""
    order = np.argsort(-acts.reshape(len(acts), -1).mean(1))[:max_maps]
    n = len(order)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(cols * 1.0 + 0.5, rows * 1.0 + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, c in zip(axes.ravel(), order):
        ax.imshow(acts[c], cmap="viridis", interpolation="nearest")
        ax.set_title(str(c), fontsize=6)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


_FAMILY_COLOURS = {"digital": "tab:blue", "noise": "tab:red", "blur": "tab:green", "color": "tab:orange",
                   "task-specific": "tab:purple"}


def corruption_curves(result: dict) -> bytes:
    """AUC and accuracy against severity, one line per corruption (coloured by family), the clean score dashed.

    ``result`` is ``metrics/corruptions-<split>.json``.
    """
    sev = result["severities"]
    fig = Figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2)
    styles = ("-", "--", ":", "-.")
    seen: dict[str, int] = {}
    for name, c in result["corruptions"].items():
        k = seen[c["family"]] = seen.get(c["family"], -1) + 1
        style = {"color": _FAMILY_COLOURS.get(c["family"], "tab:gray"), "ls": styles[k % len(styles)],
                 "marker": "o", "ms": 4, "lw": 1.4}
        for ax, key in zip(axes, ("auc", "acc")):
            ax.plot(sev, [np.nan if v is None else v for v in c[key]], label=f"{name} ({c['family']})", **style)
    lows = []
    for ax, key, title in zip(axes, ("auc", "acc"), ("ROC AUC", "accuracy (MedMNIST's rule)")):
        clean = result["clean"][key]
        ax.axhline(clean, color="k", ls="--", lw=1.8, label="clean images")
        ax.set_xticks(sev)
        ax.set_xlabel("severity")
        ax.set_ylabel(title)
        ax.set_title(f"{title} under corruption (clean: {clean:.3f})")
        ax.grid(alpha=0.3)
        lows.append(np.nanmin([v for c in result["corruptions"].values() for v in c[key] if v is not None] + [clean]))
    for ax, low in zip(axes, lows):
        ax.set_ylim(max(0.0, min(low, 0.5) - 0.05), 1.01)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    fig.tight_layout()
    return _png(fig)

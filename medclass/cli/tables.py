"""Plain-text tables for the terminal."""

from __future__ import annotations

import math
from typing import Any


def _num(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def metrics_table(m: dict[str, Any]) -> str:
    """The headline numbers of one ``metrics/<split>.json`` as an aligned two-column table."""
    ck = m.get("checkpoint", {})
    title = f"{m.get('dataset', '')} / {m.get('split', '')}  (n={m['n']}, checkpoint epoch {ck.get('epoch')} chosen by val AUC)"
    rows = [("AUC", m["auc"]), ("ACC", m["acc"])]
    if "positive_class" in m:
        rows.append(("positive class", m["positive_class"]))
    rows += [(k, m[k]) for k in ("sensitivity", "specificity", "ppv", "npv", "f1") if k in m]
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)] + [f"{k:<{width}}  {_num(v)}" for k, v in rows]
    cm = m.get("confusion_matrix")
    if cm and len(cm) <= 12:
        lines.append("confusion matrix (rows: true class, columns: predicted)")
        w = max(len(str(x)) for row in cm for x in row)
        lines += ["  " + " ".join(f"{x:>{w}}" for x in row) for row in cm]
    return "\n".join(lines)


def simple_table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[_num(c) for c in r] for r in rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    out = ["  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths)).rstrip() for r in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)

"""Small helpers for names read from files: natural sort order, and the spelling two names differ in."""

from __future__ import annotations

import math
import re
import unicodedata

__all__ = ["canonical_spelling", "natural_key"]


def natural_key(s: str) -> tuple:
    """Sort key putting ``img2`` before ``img10``."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", s) if t)


def canonical_spelling(name: str) -> str:
    """``name`` with the differences a person does not see removed: Unicode NFKC normalisation, case folding,
    surrounding and repeated whitespace, and a number's written form (``1``, ``1.0`` and ``01`` are all ``1``).

    Two labels with the same canonical spelling were almost certainly meant as one class.
    """
    s = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    try:
        x = float(s)
    except ValueError:
        return s
    if not math.isfinite(x):  # nan, inf: keep the text
        return s
    return str(int(x)) if x == int(x) else repr(x)

"""Split files: a split saved as ``split.csv`` and applied again to a manifest's rows.

:func:`save_split` writes ``key,split[,group]`` (key: the image path as written in the manifest) so a run can
be repeated on the same patients; :func:`load_split` reads one back, refusing unknown split names, empty or
repeated keys with their line numbers; :func:`apply_split` maps it onto the current manifest rows. Making
the split in the first place is :mod:`medclass.data.splits`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError, did_you_mean
from ..utils.io import atomic_write_text
from .splits import SPLIT_NAMES

__all__ = ["apply_split", "load_split", "save_split", "split_csv_text"]

log = logging.getLogger(__name__)

_SHOW = 5  # how many offending keys or rows an error message lists

def save_split(path: str | os.PathLike, keys: Sequence[str], split: Sequence[str],
               groups: Sequence[str] | None = None) -> None:
    """Write a split as CSV with columns ``key,split`` (and ``group`` when given), atomically.

    ``key`` is the image path as written in the manifest, so the file can be reapplied with
    :func:`load_split` and :func:`apply_split`.
    """
    keys = [str(k) for k in keys]
    split = [str(s) for s in split]
    if len(split) != len(keys) or (groups is not None and len(groups) != len(keys)):
        raise DataError(f"save_split got {len(keys)} keys, {len(split)} split names"
                        + ("" if groups is None else f" and {len(groups)} groups") + "; they must match.")
    dup = _duplicates(keys)
    if dup:
        raise DataError(f"Cannot save split to '{path}': keys appear more than once: {', '.join(map(repr, dup))}. "
                        f"Each key (image path) must be unique.")
    atomic_write_text(path, split_csv_text(keys, split, groups))


def split_csv_text(keys: Sequence[str], split: Sequence[str], groups: Sequence[str] | None = None) -> str:
    """The CSV text :func:`save_split` writes (for callers that store it elsewhere, e.g. in a run folder)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["key", "split"] + ([] if groups is None else ["group"]))
    if groups is None:
        writer.writerows(zip(keys, split))
    else:
        writer.writerows(zip(keys, split, (str(g) for g in groups)))
    return buf.getvalue()


def load_split(path: str | os.PathLike, allowed: Sequence[str] = SPLIT_NAMES) -> dict[str, str]:
    """Read a split file written by :func:`save_split`: a mapping key -> split name.

    Args:
        path: the CSV file; it needs the columns ``key`` and ``split`` (others are ignored).
        allowed: the split names accepted.

    Raises:
        DataError: the file is missing or unreadable, lacks a column, names an unknown split, has an
            empty key or the same key twice.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Split file '{path}' does not exist. Pass the split.csv of an earlier run, "
                        f"or leave data.split_file unset to make a new split.")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:  # utf-8-sig: files saved by Excel start with a BOM
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in ("key", "split") if c not in columns]
            if missing:
                raise DataError(f"Split file '{path}' lacks the column(s) {', '.join(missing)}; found "
                                f"{', '.join(columns) or 'no header'}. It needs a header 'key,split' "
                                f"(as written by save_split).")
            reader.fieldnames = columns
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"Split file '{path}' cannot be read as a UTF-8 CSV: {e}") from e

    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        key, name = (row.get("key") or "").strip(), (row.get("split") or "").strip()
        if not key:
            problems.append(f"line {line}: empty key")
        elif name not in allowed:
            hint = did_you_mean(name.lower(), allowed).strip()  # " Did you mean 'test'?"
            problems.append(f"line {line}: split {name!r} is not one of {', '.join(allowed)}"
                            + (f" ({hint[0].lower()}{hint[1:]})" if hint else ""))
        elif key in out:
            problems.append(f"line {line}: key {key!r} already appears on line {first_line[key]}")
        else:
            out[key] = name
            first_line[key] = line
    if problems:
        more = f" (and {len(problems) - _SHOW} more)" if len(problems) > _SHOW else ""
        raise DataError(f"Split file '{path}' has {len(problems)} bad row(s){more}: " + "; ".join(problems[:_SHOW])
                        + ". Each row needs a unique key and a split name.")
    return out


def apply_split(saved: Mapping[str, str], keys: Sequence[str], where: str) -> np.ndarray:
    """Map a saved split onto the current rows: the split name of each key.

    Every key must be in ``saved``; keys in ``saved`` but not in ``keys`` are fine (logged), so a split
    can be reused on a manifest that lost some rows.

    Args:
        saved: key -> split name, from :func:`load_split`.
        keys: the current rows' keys (image paths as written in the manifest).
        where: what ``keys`` come from, for messages (e.g. the manifest path).
    """
    keys = [str(k) for k in keys]
    missing = [k for k in keys if k not in saved]
    if missing:
        raise DataError(f"{where}: {len(missing)} of {len(keys)} rows are not in the saved split, e.g. "
                        f"{', '.join(map(repr, missing[:_SHOW]))}. The split file was made for other rows; "
                        f"make a new split (leave data.split_file unset) or add these keys to the split file.")
    extra = len(saved) - len(set(keys))
    if extra > 0:
        current = set(keys)
        sample = [k for k in saved if k not in current][:_SHOW]
        log.info("%s: %d keys of the saved split are not in the current rows (e.g. %s); ignoring them.",
                 where, extra, ", ".join(sample))
    return np.asarray([saved[k] for k in keys], dtype=str)




def _duplicates(keys: list[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for k in keys:
        if k in seen and k not in dup:
            dup.append(k)
        seen.add(k)
    return dup[:_SHOW]

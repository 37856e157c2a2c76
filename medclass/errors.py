"""Exceptions raised by medclass for bad input.

Every message answers three questions: what was wrong (with the value received), where (file, row,
config key or argument) and what to do about it. They subclass the built-in type a caller would
expect (``ValueError``, ``FileNotFoundError``) so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "MedclassError",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "ChecksumError",
    "RunFolderError",
    "CheckpointError",
    "DivergenceError",
    "did_you_mean",
]


class MedclassError(Exception):
    """Base class of every error medclass raises on purpose."""


class ConfigError(MedclassError, ValueError):
    """A configuration value or combination of values is invalid."""


class DataError(MedclassError, ValueError):
    """Input data is malformed: wrong shape, wrong dtype, unreadable image."""


class DatasetNotFoundError(MedclassError, FileNotFoundError):
    """A dataset file is neither on disk nor downloadable."""


class ChecksumError(MedclassError, ValueError):
    """A file's MD5 does not match the published checksum."""


class RunFolderError(MedclassError, ValueError):
    """A run folder is missing, unfinished, not a run, or refused (exists, unwritable)."""


class CheckpointError(MedclassError, ValueError):
    """A checkpoint is corrupted, truncated, or does not match the model."""


class DivergenceError(MedclassError, FloatingPointError):
    """Training diverged: the loss became infinite or NaN, or rose far above where it started."""


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""`` when nothing is close."""
    matches = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""

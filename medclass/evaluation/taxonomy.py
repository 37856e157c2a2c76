"""A class taxonomy: train on fine classes, report coarse ones by summing their children's probabilities.

A dermatology model may learn nine lesion types yet be judged on *malignant vs benign*; a histology model
may learn tissue types and be asked *tumour vs not*. Because the fine classes are mutually exclusive, the
probability of a coarse class is exactly the sum of its children's probabilities, so one fine model gives
both levels without retraining. ``eval.taxonomy`` names the groups, one entry per coarse class::

    eval:
      taxonomy: ["benign=nevus+keratosis+dermatofibroma", "malignant=melanoma+bcc"]

(on the command line: ``--set eval.taxonomy=benign=nevus+keratosis,malignant=melanoma+bcc``). Every fine
class must belong to exactly one coarse class. ``medclass evaluate`` then scores both levels; the coarse
level sits under ``taxonomy`` in ``metrics/<split>.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

__all__ = ["Taxonomy", "parse_taxonomy"]


@dataclass(frozen=True)
class Taxonomy:
    coarse: tuple[str, ...]  # coarse class names, in output order
    parent: np.ndarray  # (n_fine,) index of each fine class's coarse class

    @property
    def matrix(self) -> np.ndarray:
        """``(n_fine, n_coarse)`` 0/1 membership: coarse probabilities are ``fine_proba @ matrix``."""
        return np.eye(len(self.coarse))[self.parent]

    def probabilities(self, fine_proba: np.ndarray) -> np.ndarray:
        return np.asarray(fine_proba, dtype=float) @ self.matrix

    def labels(self, fine_labels: np.ndarray) -> np.ndarray:
        return self.parent[np.asarray(fine_labels, dtype=int)]

    def to_dict(self, fine: Sequence[str]) -> dict[str, list[str]]:
        return {c: [f for f, p in zip(fine, self.parent) if p == i] for i, c in enumerate(self.coarse)}


def parse_taxonomy(entries: Sequence[str], fine: Sequence[str]) -> Taxonomy:
    """``["coarse=fine1+fine2", ...]`` over the fine class names ``fine`` (or their indices) as a :class:`Taxonomy`.

    Raises:
        ConfigError: malformed entry, unknown fine class, a fine class in two groups or in none, fewer
            than two coarse classes.
    """
    fine = [str(f) for f in fine]
    index = {f: i for i, f in enumerate(fine)}
    parent = np.full(len(fine), -1)
    coarse: list[str] = []
    for entry in entries:
        name, sep, children = str(entry).partition("=")
        name = name.strip()
        kids = [c.strip() for c in children.split("+") if c.strip()]
        if not sep or not name or not kids:
            raise ConfigError(f"eval.taxonomy entry {entry!r} is not 'coarse=fine1+fine2'. Example: "
                              f"--set eval.taxonomy=benign=nevus+keratosis,malignant=melanoma.")
        if name in coarse:
            raise ConfigError(f"eval.taxonomy names the coarse class {name!r} twice; list all its children in one "
                              f"entry.")
        for kid in kids:
            i = index.get(kid, int(kid) if kid.isdigit() and int(kid) < len(fine) else None)
            if i is None:
                raise ConfigError(f"eval.taxonomy: {kid!r} (under {name!r}) is not a class of this model. Its classes "
                                  f"are: {', '.join(fine)}.")
            if parent[i] >= 0:
                raise ConfigError(f"eval.taxonomy puts the class {fine[i]!r} under both {coarse[parent[i]]!r} and "
                                  f"{name!r}; each fine class belongs to one coarse class.")
            parent[i] = len(coarse)
        coarse.append(name)
    orphans = [f for f, p in zip(fine, parent) if p < 0]
    if orphans:
        raise ConfigError(f"eval.taxonomy leaves {', '.join(orphans)} without a coarse class; give every fine class "
                          f"one (a group of its own is fine: 'other={orphans[0]}').")
    if len(coarse) < 2:
        raise ConfigError("eval.taxonomy needs at least two coarse classes to evaluate anything.")
    return Taxonomy(tuple(coarse), parent)

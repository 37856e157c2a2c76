"""The search space: dotted config keys mapped to distributions, and how sampled values become a config.

A sampled value is applied as a config override through the same dict round trip as ``--set``
(:func:`medclass.config.build_config`), so it is validated like a hand-written one. ``augment_strength`` is
the one key that is not a config key: a number *s* in [0, 1] that scales every continuous augmentation at
once (:data:`AUGMENT_AT_FULL_STRENGTH` times *s*), one knob instead of five.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..config import RunConfig, build_config, config_to_dict, deep_merge
from ..errors import ConfigError

__all__ = ["Float", "Categorical", "DEFAULT_SPACE", "AUGMENT_AT_FULL_STRENGTH", "trial_overrides", "trial_config"]


@dataclass(frozen=True)
class Float:
    """A number sampled uniformly in [low, high], or log-uniformly when ``log``."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def distribution(self, optuna: Any) -> Any:
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Categorical:
    """One of ``choices``."""

    choices: tuple[Any, ...]

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def distribution(self, optuna: Any) -> Any:
        return optuna.distributions.CategoricalDistribution(list(self.choices))


AUGMENT_AT_FULL_STRENGTH = {"rotate": 15.0, "scale": 0.1, "translate": 0.1, "brightness": 0.1, "contrast": 0.1}

DEFAULT_SPACE: Mapping[str, Float | Categorical] = MappingProxyType({
    "train.lr": Float(1e-4, 1e-1, log=True),
    "train.batch_size": Categorical((32, 64, 128, 256)),
    "train.optimizer": Categorical(("sgd", "adam", "adamw")),
    "train.weight_decay": Float(1e-6, 1e-2, log=True),
    "model.dropout": Float(0.0, 0.5),
    "augment_strength": Float(0.0, 1.0),
})


def trial_overrides(params: Mapping[str, Any]) -> dict[str, Any]:
    """Nested config overrides for sampled ``params`` (dotted keys; ``augment_strength`` expanded)."""
    flat = dict(params)
    out: dict[str, Any] = {}
    if "augment_strength" in flat:
        s = float(flat.pop("augment_strength"))
        out = {"train": {"augment": {k: round(v * s, 6) for k, v in AUGMENT_AT_FULL_STRENGTH.items()}}}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def trial_config(base: RunConfig, params: Mapping[str, Any]) -> RunConfig:
    """``base`` with ``params`` applied, rebuilt and validated like ``--set`` overrides."""
    return build_config(overrides=deep_merge(config_to_dict(base), trial_overrides(params)))


def _check_space(optuna: Any, study: Any, space: Mapping[str, Float | Categorical]) -> None:
    """An existing study must have been searched over the same ranges (Optuna refuses a changed space mid-trial)."""
    seen: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False):
        seen.update(t.distributions)
    changed = [f"{k}: {seen[k]} in the study, {d.distribution(optuna)} now" for k, d in space.items()
               if k in seen and seen[k] != d.distribution(optuna)]
    if changed:
        raise ConfigError(f"Study {study.study_name!r} already holds trials over a different search space "
                          f"({'; '.join(changed)}). Keep the space, or start a new study (--study-name or "
                          f"another --out).")


def _example(dist: Float | Categorical) -> Any:
    return dist.choices[0] if isinstance(dist, Categorical) else dist.low

"""The run configuration: one typed object, built once at the edge, validated once, saved with the run.

``RunConfig`` is a tree of frozen dataclasses. Each field declares its default, a one-line meaning and
its constraints (``field(..., metadata=...)``); :func:`validate` walks the tree and reports every
problem at once, each under its dotted key (``train.lr``). Values are resolved in this order, later
wins: the dataclass defaults, the named recipe (:mod:`medclass.recipes`), a YAML file, then
command-line overrides. Python users build the same object directly::

    cfg = RunConfig(data=DataConfig(dataset="breastmnist"), train=TrainConfig(epochs=20))
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError, did_you_mean
from .recipes import get_recipe

__all__ = [
    "DataConfig",
    "PreprocessConfig",
    "AugmentConfig",
    "ModelConfig",
    "TrainConfig",
    "EvalConfig",
    "RunConfig",
    "build_config",
    "validate",
    "config_to_dict",
    "config_from_dict",
    "load_yaml",
    "parse_overrides",
    "check_table_keys",
]


def _f(default: Any, help: str, **constraints: Any) -> Any:
    """A dataclass field with its meaning and constraints (choices, ge, gt, le, lt) attached."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults: configs are frozen")
    return field(default=default, metadata={"help": help, **constraints})


def check_table_keys(table: Mapping[str, Any], names: Iterable[str], where: str) -> None:
    """Raise ``ImportError`` unless ``table`` has exactly the keys ``names``: a name is declared once, here (for
    the choices of a config field), and the table that builds or handles it is checked against it at import."""
    names = tuple(names)
    missing, extra = [n for n in names if n not in table], [n for n in table if n not in names]
    if missing or extra:
        raise ImportError(f"{where} must have exactly the names the configuration declares ({', '.join(names)}); "
                          f"missing: {', '.join(missing) or 'none'}; not declared: {', '.join(extra) or 'none'}.")


PRESETS = ("none", "ct-lung", "ct-mediastinum", "ct-bone", "ct-brain", "ct-abdomen", "ct-multi", "xray", "fundus",
           "dermatology", "mri")
CT_WINDOWS = ("lung", "mediastinum", "bone", "brain", "abdomen")
TASKS = ("binary", "multiclass", "multilabel", "ordinal", "regression", "multitask")
# Names declared once, here; each has a builder in a table of the module that builds it, checked against these
# names when that module is imported (medclass.training.optim, medclass.training.losses, medclass.evaluation.kinds).
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adadelta", "adam", "adamw")
SCHEDULES = ("constant", "step", "multistep", "plateau", "cosine", "onecycle")
LOSSES = ("auto", "cross-entropy", "bce", "hinge", "mse", "l1", "huber")


@dataclass(frozen=True)
class PreprocessConfig:
    """How a decoded file becomes a uint8 image at the training size, done once and cached.

    ``preset`` bundles the usual steps for a modality; the other switches add steps on top of it.
    """

    preset: str = _f("none", "modality preset: none, ct-lung, ct-mediastinum, ct-bone, ct-brain, ct-abdomen, "
                             "ct-multi (lung, mediastinum, bone as 3 channels), xray (min-max, CLAHE), fundus "
                             "(field-of-view crop, CLAHE), dermatology (colour constancy), mri (foreground z-score)",
                     choices=PRESETS)
    windows: tuple[str, ...] = _f((), "CT windows stacked as channels (lung, mediastinum, bone, brain, abdomen); "
                                     "overrides the preset's windows", choices=CT_WINDOWS)
    window_center: float | None = _f(None, "custom display window centre (HU for CT); with window_width")
    window_width: float | None = _f(None, "custom display window width; with window_center", gt=0)
    clahe: bool = _f(False, "contrast-limited adaptive histogram equalisation (scikit-image)")
    clahe_clip: float = _f(0.01, "CLAHE clip limit (scikit-image's clip_limit)", gt=0, le=1)
    fov_crop: bool = _f(False, "crop to the circular field of view (fundus photographs)")
    color_constancy: bool = _f(False, "shades-of-grey colour constancy (dermatology photographs)")
    zscore_foreground: bool = _f(False, "z-score within the foreground, mapped from [-3, 3] to 0-255 (MRI)")
    resize: str = _f("crop", "to the square training size: crop (centre square), pad (letterbox) or stretch",
                     choices=("crop", "pad", "stretch"))


@dataclass(frozen=True)
class DataConfig:
    dataset: str = _f("breastmnist", "MedMNIST name (`medclass data list`) or a path to an .npz in MedMNIST layout; "
                                     "ignored when manifest is set")
    size: int = _f(28, "image side in pixels; MedMNIST+ ships 28, 64, 128 and 224; any size for a manifest", ge=8)
    data_dir: str | None = _f(None, "folder holding the .npz files; unset: $MEDCLASS_DATA, then the user cache")
    download: bool = _f(True, "download a missing MedMNIST file (needs internet); false: fail with where to put it")
    normalize: str = _f("fixed", "fixed (mean/std below), dataset (per-channel mean/std of train), image-zscore, "
                                 "image-minmax, or mean-image (subtract the mean training image)",
                        choices=("fixed", "dataset", "image-zscore", "image-minmax", "mean-image"))
    mean: tuple[float, ...] = _f((0.5,), "per-channel mean subtracted after scaling pixels to [0, 1]")
    std: tuple[float, ...] = _f((0.5,), "per-channel std divided after subtracting the mean", gt=0)
    # --- your own images: a manifest CSV (see medclass.data.manifest) -------------------------------
    manifest: str | None = _f(None, "CSV with one row per image: path, label column(s), optional patient_id, "
                                    "split and metadata columns")
    image_root: str | None = _f(None, "folder the manifest's paths are relative to; unset: the manifest's folder")
    path_column: str = _f("path", "manifest column holding the image path")
    label_columns: tuple[str, ...] = _f(("label",), "manifest label column; several 0/1 columns for multi-label")
    patient_column: str = _f("patient_id", "manifest column with the patient (or scan) id; rows sharing it stay "
                                           "in one split")
    case_column: str = _f("case_id", "manifest column whose rows form one case (the views or slices of one study, "
                                     "classified together); absent from the manifest: each row is one example")
    view_column: str = _f("view", "with cases: manifest column naming each row's view (frontal, lateral, CC, MLO)")
    views: tuple[str, ...] = _f((), "with cases: the views every case holds, in this order (a case lacking one, or a "
                                    "view not listed, is an error); unset: the view column's values, sorted; no "
                                    "view column: a case's rows are slices, in path order")
    classes: tuple[str, ...] = _f((), "class names in order; unset: sorted values of the label column")
    task: str | None = _f(None, "binary, multiclass, multilabel (several 0/1 columns), ordinal (grades in the "
                                "order of data.classes), regression (a numeric column) or multitask (several class "
                                "columns, one head each); unset: inferred from the labels",
                          choices=TASKS)
    channels: int | None = _f(None, "1 or 3 channels; unset: 3 when any image is colour or several windows "
                                    "are stacked, else 1", choices=(1, 3))
    split_file: str | None = _f(None, "reuse a saved split (split.csv of an earlier run); else the manifest's "
                                      "split column, else ratios")
    split_ratios: tuple[float, ...] = _f((0.7, 0.15, 0.15), "train/val/test fractions of patients", gt=0, lt=1)
    split_seed: int = _f(0, "seed of the patient split (separate from the training seed, so runs with different "
                            "seeds share one split)", ge=0)
    folds: int = _f(0, "K-fold cross-validation over the non-test patients (grouped, stratified); 0: off", ge=0)
    fold: int = _f(0, "with folds: which fold is the validation split", ge=0)
    refit: bool = _f(False, "train on train+val together (MedMNIST: the official train and val; a manifest: every "
                            "non-test patient), e.g. with the epochs cross-validation chose. The val split is kept "
                            "so the loop runs, but it is training data then: its metrics are not a validation")
    frame: str = _f("middle", "multi-frame DICOM / NIfTI volume: which frame or slice becomes the 2D image "
                              "(middle, or an index)")
    volumes: bool = _f(False, "manifest rows are volumes: a NIfTI file, a DICOM series folder or a multi-frame "
                              "DICOM, each resampled to a size³ cube for a 3D model; identical volumes are found "
                              "across splits, near-duplicates are not (perceptual hashes are 2D)")
    leakage: str = _f("refuse", "patients or (near-)duplicate images shared across splits: refuse, warn or off",
                      choices=("refuse", "warn", "off"))
    # 2, not 4: re-saved copies (rescaled, JPEG, brightness) land within 2 bits 99-100% of the time, while at 4
    # bits distinct chest X-rays of PneumoniaMNIST's official split already form 48 false near-duplicate groups
    # (medclass/data/leakage.py has the measurements).
    near_duplicate_bits: int = _f(2, "perceptual-hash distance (of 64 bits) at or below which two images count "
                                     "as near-duplicates", ge=0, le=32)
    skip_bad: bool = _f(False, "skip unreadable or invalid rows (listed in bad_rows.csv in the run folder) "
                               "instead of stopping")
    cache: bool = _f(True, "cache decoded, preprocessed images (memory-mapped) so later epochs and runs skip "
                           "decoding")
    cache_dir: str | None = _f(None, "where the decode cache lives; unset: the user cache folder")
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)


@dataclass(frozen=True)
class AugmentConfig:
    """Random changes applied to training batches only (never at evaluation)."""

    hflip: bool = _f(False, "mirror left-right with probability 0.5")
    vflip: bool = _f(False, "mirror top-bottom with probability 0.5")
    rotate: float = _f(0.0, "maximum rotation in degrees, sampled uniformly in [-rotate, rotate]", ge=0, le=180)
    scale: float = _f(0.0, "maximum zoom change as a fraction, sampled in [1-scale, 1+scale]", ge=0, lt=1)
    translate: float = _f(0.0, "maximum shift as a fraction of the image side", ge=0, le=0.5)
    brightness: float = _f(0.0, "maximum additive brightness change, in units of the pixel range", ge=0, le=1)
    contrast: float = _f(0.0, "maximum multiplicative contrast change as a fraction", ge=0, lt=1)
    rot90: bool = _f(False, "rotate by a random multiple of 90 degrees (0, 90, 180 or 270)")
    crop_scale: float = _f(1.0, "random resized crop: smallest kept fraction of the image area (1: off)", gt=0, le=1)
    crop_ratio: float = _f(4 / 3, "random resized crop: largest aspect-ratio change (ratio in [1/r, r])", ge=1)

    @property
    def enabled(self) -> bool:
        return any((self.hflip, self.vflip, self.rotate, self.scale, self.translate, self.brightness, self.contrast,
                    self.rot90, self.crop_scale < 1))


@dataclass(frozen=True)
class ModelConfig:
    name: str = _f("resnet9", "registered architecture (`medclass models list`)")
    transfer: str = _f("full", "what trains: full (every layer), linear (only the classifier, on frozen features), "
                               "last-k (the classifier and the last trainable_blocks blocks), or discriminative "
                               "(everything, the backbone at train.backbone_lr_factor times the head's rate)",
                       choices=("full", "linear", "last-k", "discriminative"))
    trainable_blocks: int = _f(1, "last-k: how many of the backbone's last blocks train", ge=0)
    width: int | None = _f(None, "base channel width; unset: the architecture's default", gt=0)
    dropout: float = _f(0.0, "dropout probability before the classifier", ge=0, lt=1)
    head: str = _f("auto", "output head: auto (the task's: softmax per class, sigmoid per label, one value for "
                           "regression) or coral (ordinal tasks: rank-consistent cumulative logits, Cao et al. 2020)",
                   choices=("auto", "coral"))
    fusion: str = _f("auto", "cases of several images: how the per-image features become one: concat (in view "
                             "order, then a hidden layer, so the combination of views counts), mean, max or attn "
                             "(gated attention; these three ignore the order); auto: concat for named views, attn "
                             "for slices", choices=("auto", "concat", "mean", "max", "attn"))
    view_encoder: str = _f("shared", "cases: one network for every view (shared) or one per view (per-view)",
                           choices=("shared", "per-view"))
    pretrained: str | None = _f(None, "initial weights: imagenet (torchvision/timm weights; downloaded when online "
                                      "or found in their cache), a weights file (.safetensors/.pth), or a medclass "
                                      "run folder to fine-tune from; unset: random initialisation")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _f(30, "passes over the training split", gt=0)
    batch_size: int = _f(128, "images per optimisation step", gt=0)
    optimizer: str = _f("adamw", "optimiser (torch.optim): sgd (momentum and nesterov below: Nesterov momentum "
                                 "0.9 unless changed, momentum=0 for plain SGD), momentum (heavy-ball), nesterov, "
                                 "rmsprop, adagrad, adadelta (lr scales its step; torch's default is lr=1), adam "
                                 "(L2 penalty added to the gradient), adamw (decoupled weight decay)",
                         choices=OPTIMIZERS)
    lr: float = _f(2e-3, "peak learning rate", gt=0)
    weight_decay: float = _f(5e-4, "L2 penalty (decoupled for adamw); never on biases and normalisation weights",
                             ge=0)
    momentum: float = _f(0.9, "momentum of sgd, momentum and nesterov; ignored by the adaptive optimisers", ge=0, lt=1)
    nesterov: bool = _f(True, "sgd: Nesterov momentum (when momentum > 0); the momentum/nesterov optimisers "
                              "fix it themselves")
    backbone_lr_factor: float = _f(0.1, "model.transfer=discriminative: the backbone's learning rate as a "
                                        "fraction of the head's", gt=0, le=1)
    schedule: str = _f("onecycle", "learning-rate schedule: constant, step (x gamma every step_size epochs), "
                                   "multistep (x gamma at milestones), plateau (x gamma when the validation loss "
                                   "stalls for plateau_patience epochs), cosine (warm-up, then cosine decay), "
                                   "onecycle (warm-up, then cosine annealing, Smith 2018)",
                       choices=SCHEDULES)
    warmup: float = _f(0.2, "onecycle/cosine: fraction of steps spent warming up", ge=0, lt=1)
    step_size: int = _f(10, "step: epochs between two multiplications by gamma", gt=0)
    milestones: tuple[float, ...] = _f((0.5, 0.75), "multistep: fractions of training where lr is multiplied by gamma")
    gamma: float = _f(0.1, "step, multistep and plateau: factor applied to the learning rate at each drop",
                      gt=0, le=1)
    plateau_patience: int = _f(5, "plateau: epochs without a lower validation loss before the learning rate drops",
                               ge=0)
    loss: str = _f("auto", "training loss: auto (the task's: cross-entropy, multi-label BCE), cross-entropy, bce "
                           "(binary: on the logit difference, the same loss as 2-class cross-entropy; multi-label: "
                           "per label), hinge (multi-class SVM margin loss), mse (squared error of the "
                           "probabilities against one-hot targets; regression: squared error), l1 and huber "
                           "(regression). Multi-label labels equal to -1 (unknown) are left out of every loss",
                  choices=LOSSES)
    label_smoothing: float = _f(0.0, "label smoothing of cross-entropy and bce targets", ge=0, lt=1)
    # none, not balanced: chosen by leave-one-dataset-out on validation data (benchmarks/results/generalisation.md):
    # the balanced loss trades accuracy away where the classes are imbalanced (AdrenalMNIST3D projections: validation
    # accuracy 0.653 against 0.816), for at most 0.007 of score elsewhere
    class_weights: str = _f("none", "weight the loss by class frequency: none, or balanced (n / (k * n_class); "
                                    "multi-label: positive weight n_neg / n_pos per label, as CheXNet)",
                            choices=("none", "balanced"))
    grad_clip: float = _f(0.0, "clip the gradients' global L2 norm to this value before each step; 0 disables it",
                          ge=0)
    amp: str = _f("auto", "mixed precision: auto (float16 autocast with loss scaling on CUDA; nothing on CPU, where "
                          "reduced precision is many times slower) or off (float32 everywhere)",
                  choices=("auto", "off"))
    ema: float = _f(0.0, "decay of an exponential moving average of the weights; 0 disables it", ge=0, lt=1)
    early_stopping: int = _f(0, "stop after this many epochs without a better validation AUC; 0 disables it", ge=0)
    checkpoint: str = _f("auto", "the weights kept as checkpoints/best.safetensors: best (highest validation AUC), "
                                 "last (the final epoch), or auto (last with data.refit, whose val split is "
                                 "training data; else best)", choices=("auto", "best", "last"))
    checkpoint_tolerance: float = _f(1.0, "best: an epoch whose validation AUC is within this many standard errors "
                                          "(Hanley & McNeil) of the highest counts as tied with it, and the latest "
                                          "tied epoch is kept, as a saturated AUC otherwise picks among equal "
                                          "epochs by noise; 0 keeps the first epoch with the highest AUC (the "
                                          "MedMNIST rule)", ge=0)
    checkpoint_guard: bool = _f(True, "best: an epoch whose validation loss is worse than uniform probabilities "
                                      "(knowing nothing) is not kept while a sound epoch exists, however high "
                                      "its validation AUC: its probabilities are degenerate (classification)")
    channels_last: bool = _f(True, "NHWC memory layout; about 20% faster convolutions on CPU")
    device: str = _f("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    num_threads: int = _f(0, "CPU threads for PyTorch; 0 keeps PyTorch's choice", ge=0)
    # The default recipe trains without augmentation: on validation data (BreastMNIST cross-validation,
    # PneumoniaMNIST val) small affine changes did not beat none at 30 epochs, and mirroring hurt; see
    # benchmarks/recipe_search/README.md.
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = _f(512, "images per forward pass at evaluation", gt=0)
    tta: bool = _f(False, "average predictions over the image and its left-right mirror")
    threshold: float = _f(0.5, "binary and multi-label decision threshold (MedMNIST uses 0.5)", gt=0, lt=1)
    n_boot: int = _f(2000, "bootstrap replicates for every 95% interval (10000 for publication)", ge=100)
    ci_level: float = _f(0.95, "coverage of the bootstrap intervals", gt=0.5, lt=1)
    sensitivity_target: float = _f(0.95, "high-sensitivity operating point: validation sensitivity to reach",
                                   gt=0, lt=1)
    specificity_target: float = _f(0.95, "high-specificity operating point: validation specificity to reach",
                                   gt=0, lt=1)
    temperature_scaling: bool = _f(False, "also report probabilities recalibrated by a temperature fitted on val")
    label_shift: str = _f("none", "also report metrics with probabilities adapted to the class balance estimated "
                                  "from the scored split's images (em: Saerens 2002; bbse: Lipton 2018); headline "
                                  "numbers stay unadapted", choices=("none", "em", "bbse"))
    taxonomy: tuple[str, ...] = _f((), "multi-class models: coarse classes as 'coarse=fine1+fine2' entries; the fine "
                                       "classes' probabilities are summed and both levels are evaluated")


@dataclass(frozen=True)
class RunConfig:
    recipe: str = _f("default", "the named recipe these settings started from (`medclass train --recipe`)")
    seed: int = _f(0, "seed of every random choice: weights, shuffling, augmentation", ge=0)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# --- conversion ---------------------------------------------------------------------------------


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain, YAML-friendly dict of a config (tuples become lists)."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = config_to_dict(v) if is_dataclass(v) else (list(v) if isinstance(v, tuple) else v)
    return out


def config_from_dict(d: Mapping[str, Any], cls: type = RunConfig, *, prefix: str = "") -> Any:
    """Build ``cls`` from a nested mapping, coercing types; unknown keys are an error with a suggestion."""
    problems: list[str] = []
    obj = _from_dict(d, cls, prefix, problems)
    if problems:
        raise ConfigError(_problems_message(problems))
    return obj


def _from_dict(d: Mapping[str, Any], cls: type, prefix: str, problems: list[str]) -> Any:
    if not isinstance(d, Mapping):
        problems.append(f"{prefix or 'config'}: expected a mapping of settings, got {type(d).__name__} {d!r}")
        return cls()
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            problems.append(f"{dotted}: unknown setting.{did_you_mean(key, names)} "
                            f"Known here: {', '.join(sorted(names))}")
            continue
        tp = hints[key]
        if is_dataclass(tp):
            # a partial mapping updates this field's *default* (e.g. the default recipe's augmentation),
            # not the bare class defaults
            base = config_to_dict(_field_default(cls, key))
            merged = deep_merge(base, value) if isinstance(value, Mapping) else value
            kwargs[key] = _from_dict(merged, tp, f"{dotted}.", problems)
            continue
        try:
            kwargs[key] = _coerce(value, tp)
        except (TypeError, ValueError):
            problems.append(f"{dotted}: expected {_type_name(tp)}, got {value!r}")
    return cls(**kwargs)


def _field_default(cls: type, name: str) -> Any:
    f = next(f for f in fields(cls) if f.name == name)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _coerce(value: Any, tp: Any) -> Any:
    """Coerce a YAML/CLI value to the annotated type, or raise TypeError/ValueError."""
    origin, args = get_origin(tp), get_args(tp)
    if args and type(None) in args:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner)
    if origin is tuple:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else value.split(",")
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(v, args[0]) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ValueError(value)
    if tp is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError(value)
        return str(value)
    raise TypeError(f"unsupported config type {tp}")


def _type_name(tp: Any) -> str:
    args = get_args(tp)
    if args and type(None) in args:
        return f"{_type_name([a for a in args if a is not type(None)][0])} or null"
    if get_origin(tp) is tuple:
        return f"a list of {_type_name(args[0])}"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


# --- validation ---------------------------------------------------------------------------------


def validate(cfg: RunConfig) -> RunConfig:
    """Check every field's constraints and the combinations; raise one ConfigError listing all problems."""
    problems = list(_field_problems(cfg, ""))
    problems += _combination_problems(cfg)
    if problems:
        raise ConfigError(_problems_message(problems))
    return cfg


def _field_problems(cfg: Any, prefix: str) -> Iterable[str]:
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        if is_dataclass(v):
            yield from _field_problems(v, f"{key}.")
            continue
        m = f.metadata
        values = v if isinstance(v, tuple) else (v,)
        for x in values:
            if x is None:
                continue
            if isinstance(x, float) and not math.isfinite(x):
                yield f"{key} must be a finite number. Got {x!r} instead."
            if "choices" in m and x not in m["choices"]:
                opts = ", ".join(map(str, m["choices"]))
                yield f"{key} must be one of {opts}. Got {x!r} instead.{did_you_mean(x, map(str, m['choices']))}"
            for op, test, word in (("ge", lambda a, b: a >= b, ">="), ("gt", lambda a, b: a > b, ">"),
                                   ("le", lambda a, b: a <= b, "<="), ("lt", lambda a, b: a < b, "<")):
                if op in m and isinstance(x, (int, float)) and not test(x, m[op]):
                    yield f"{key} must be {word} {m[op]}. Got {x!r} instead."


def _combination_problems(cfg: RunConfig) -> list[str]:
    out = []
    d, t = cfg.data, cfg.train
    if len(d.mean) != len(d.std):
        out.append(f"data.mean and data.std must have the same length. Got {len(d.mean)} and {len(d.std)}.")
    if d.manifest is None and d.size not in (28, 64, 128, 224):
        out.append(f"data.size must be 28, 64, 128 or 224 for a MedMNIST dataset. Got {d.size} instead.")
    if d.volumes and d.manifest is None:
        out.append(f"data.volumes reads a manifest's rows as volumes, but no data.manifest is set ({d.dataset} is "
                   f"read as published; the MedMNIST 3D datasets are volumes already). Set data.manifest, or drop "
                   f"data.volumes.")
    if len(d.split_ratios) != 3 or abs(sum(d.split_ratios) - 1) > 1e-6:
        out.append(f"data.split_ratios must be three fractions (train, val, test) summing to 1. "
                   f"Got {list(d.split_ratios)!r} instead.")
    if d.folds == 1 or (d.folds and d.fold >= d.folds):
        out.append(f"data.folds must be 0 (off) or >= 2, and data.fold below it. Got folds={d.folds}, fold={d.fold}.")
    if not (d.frame == "middle" or d.frame.lstrip("-").isdigit()):
        out.append(f"data.frame must be 'middle' or a frame index. Got {d.frame!r} instead.")
    if not d.label_columns:
        out.append("data.label_columns must name at least one column.")
    if d.refit and t.checkpoint == "best":
        out.append("train.checkpoint=best chooses the epoch on validation, but with data.refit the val split is "
                   "training data. Use train.checkpoint=last (or auto).")
    if d.refit and t.early_stopping:
        out.append(f"train.early_stopping={t.early_stopping} watches validation, but with data.refit the val split "
                   f"is training data. Set train.early_stopping=0 and choose train.epochs (`medclass cv` refits for "
                   f"the median best epoch of its folds).")
    if d.refit and d.folds:
        out.append(f"data.refit trains on every non-test image, so it cannot also hold out fold {d.fold} of "
                   f"data.folds={d.folds}. Set data.folds=0 for the refit.")
    p = d.preprocess
    if (p.window_center is None) != (p.window_width is None):
        out.append("data.preprocess.window_center and window_width must be given together.")
    if t.schedule == "multistep" and (not t.milestones or any(not 0 < m < 1 for m in t.milestones)
                                      or list(t.milestones) != sorted(t.milestones)):
        out.append(f"train.milestones must be increasing fractions in (0, 1). Got {list(t.milestones)!r} instead.")
    if t.optimizer in ("momentum", "nesterov") and t.momentum == 0:
        out.append(f"train.optimizer={t.optimizer} needs train.momentum > 0. Got 0; use train.optimizer=sgd with "
                   f"momentum 0 for plain SGD.")
    if t.schedule == "plateau" and t.gamma >= 1:
        out.append(f"train.gamma must be < 1 with train.schedule=plateau (the factor applied when the validation "
                   f"loss stalls). Got {t.gamma!r} instead.")
    if t.label_smoothing and t.loss in ("hinge", "mse"):
        out.append(f"train.label_smoothing applies to cross-entropy and bce only, not train.loss={t.loss}. "
                   f"Set it to 0.")
    dev = t.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        out.append(f"train.device must be auto, cpu, cuda or cuda:N. Got {dev!r} instead.")
    return out


def _problems_message(problems: list[str]) -> str:
    if len(problems) == 1:
        return f"Invalid configuration: {problems[0]}"
    return "Invalid configuration (%d problems):\n  - %s" % (len(problems), "\n  - ".join(problems))


# --- building: defaults < recipe < YAML < overrides -------------------------------------------


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file; a clear error when it is missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Config file '{p}' does not exist. Pass an existing YAML file to --config.")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"Config file '{p}' is not valid YAML: {e}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"Config file '{p}' must hold a mapping of settings (data:, model:, train:, ...).")
    return d


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Turn ``["train.lr=0.01", "train.augment.hflip=true"]`` into a nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"Override {item!r} must look like key=value, e.g. train.lr=0.001.")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
            value = raw.strip()  # YAML 1.1 reads on/off/yes/no as booleans; `data.leakage=off` means the word
        _set_dotted(out, key.strip(), value)
    return out


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"Override {key!r} conflicts with an earlier value for {p!r}.")
    d[parts[-1]] = value


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for k, v in update.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def build_config(
    recipe: str | None = None,
    yaml_file: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Resolve a RunConfig: defaults, then ``recipe``, then ``yaml_file``, then ``overrides``; validated.

    The recipe may also be named inside the YAML file (``recipe: default``) or in the overrides; with
    none named anywhere it is ``default``, whose settings are the dataclass defaults.
    """
    layers: list[Mapping[str, Any]] = []
    from_yaml = load_yaml(yaml_file) if yaml_file is not None else {}
    overrides = dict(overrides or {})
    name = overrides.get("recipe") or recipe or from_yaml.get("recipe") or "default"
    layers.append({**get_recipe(name), "recipe": name})
    layers += [from_yaml, overrides]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    problems: list[str] = []
    cfg = _from_dict(merged, RunConfig, "", problems)  # unknown keys and type errors...
    problems += list(_field_problems(cfg, "")) + _combination_problems(cfg)  # ...and bad values, reported together
    if problems:
        raise ConfigError(_problems_message(problems))
    return cfg


def replace(cfg: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` re-exported for frozen configs."""
    return dataclasses.replace(cfg, **changes)

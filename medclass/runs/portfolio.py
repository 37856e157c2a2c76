"""The candidate recipes ``medclass auto`` screens: the base configuration and one change at a time from it.

Every candidate is a set of config overrides applied over the *base* configuration (the ``default`` recipe
unless ``--recipe`` / ``--config`` / ``--set`` say otherwise), rebuilt and validated like ``--set``. Each
belongs to one *group*, the knob it turns; the groups, in the order they are screened (cheap and likely
first, because with one worker successive halving compares each trial with those that ran before it):

=================  ==============================================================================================
group              candidates
=================  ==============================================================================================
base               the base configuration itself (ResNet-9 width 24, AdamW 2e-3, one-cycle, unweighted
                   cross-entropy, no augmentation, 28 px for the defaults)
label-smoothing    cross-entropy with label smoothing 0.1 (classification tasks)
class-weights      the other of none / balanced (classification tasks)
augmentation       light (rotate 5 degrees, scale, translate, brightness, contrast 0.05) and medium (rotate
                   15, 0.1 each, the search's full strength); mirrors (and 90-degree turns at medium) only when
                   the images are orientation-free: MedMNIST modalities naming pathology, microscopy or a
                   dermatoscope, or a manifest with the dermatology preset. Chest X-ray, ultrasound, CT, MRI,
                   OCT and fundus images are never mirrored (anatomy and laterality have a side)
learning-rate      the base rate x2 and x0.5
schedule           cosine with warm-up instead of one-cycle (or one-cycle instead of anything else)
model              ResNet-9 at widths 16, 32 and 64 (``model.width``), ResNet-18, and timm's EfficientNet-B0 and
                   ConvNeXt-Atto. The timm models are slow on a CPU at 28 px: a trial whose first rung is
                   projected (after three batches) to overrun its share of the budget is stopped and marked
                   pruned as too slow, so they compete only where the budget allows
model              ImageNet weights (ResNet-18, EfficientNet-B0, ConvNeXt-Atto) only when the weights are
                   already in the local torch hub / Hugging Face cache: nothing is downloaded. Otherwise the
                   option is absent and the leaderboard says why
input-size         64 px when the base is 28 px (or 28 when it is 64): for MedMNIST only when that file is
                   already on this machine (nothing is downloaded); any size for a manifest
combination       added after screening: the best change of each group that beat the base, all together
=================  ==============================================================================================

**Volumes** (a dataset of 3D images) keep the training knobs above (the augmentations run in 3D, with the same
rule for mirrors) and screen the three ways to model a volume instead of the 2D models, sized for a CPU from
the per-design costs in ``benchmarks/results/volumes_cost.md`` (seconds per epoch at 28³ on two cores): the
base is the volume default ``cnn3d_small`` width 8 (15 s); the candidates are ``cnn3d_small`` width 16, the 3D
ResNet-10 (``resnet10_3d``, 30 s), ACS convolutions (``resnet9_acs``, 30 s), 2.5D orthogonal planes
(``resnet9_25d``, 2 s) and a 2D ResNet-9 per slice with mean or gated-attention pooling (``slices_resnet9_mean`` /
``_attn``, 7 s); ImageNet-initialised ``resnet18_25d`` and ``resnet18_acs`` when their weights are cached. The
ResNet-18-sized 3D designs (``resnet18_3d``, 52 s; ``resnet18_acs`` from scratch, 424 s) are left out and
listed with the reason. Another input size is a candidate with its cost known in advance (8 times the voxels at
64³ against 28³), so the screening skips it without starting it when its first rung cannot fit the budget.

:func:`build_portfolio` is pure (the facts about the data and the caches come in as :class:`PortfolioFacts`);
:func:`portfolio_facts` gathers those facts, without downloading anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import RunConfig, build_config, config_to_dict, deep_merge
from ..data.download import candidate_dirs
from ..data.medmnist import MEDMNIST
from ..errors import ConfigError, did_you_mean
from ..evaluation.kinds import get_kind
from ..models.pretrained import imagenet_cached

__all__ = ["Candidate", "PortfolioFacts", "build_portfolio", "portfolio_facts", "combine", "candidate_config", "select",
           "AUGMENT_LIGHT", "AUGMENT_MEDIUM", "ORIENTATION_FREE"]

AUGMENT_LIGHT = {"rotate": 5.0, "scale": 0.05, "translate": 0.05, "brightness": 0.05, "contrast": 0.05}
AUGMENT_MEDIUM = {"rotate": 15.0, "scale": 0.1, "translate": 0.1, "brightness": 0.1, "contrast": 0.1}
_NO_AUGMENT = {"hflip": False, "vflip": False, "rotate": 0.0, "scale": 0.0, "translate": 0.0, "brightness": 0.0,
               "contrast": 0.0, "rot90": False, "crop_scale": 1.0}
# words in a MedMNIST modality (and manifest presets) whose images have no up/down or left/right
ORIENTATION_FREE = ("pathology", "microscopy", "dermatoscope")
MIRRORED_PRESETS = ("dermatology",)
WIDTHS = (16, 32, 64)
RESNET9_WIDTH = 24  # resnet9's width when model.width is unset
TIMM_MODELS = ("efficientnet_b0", "convnext_atto")
IMAGENET_MODELS = ("resnet18", "efficientnet_b0", "convnext_atto")
# volumes: (name, width or None for the card's default, note); costs from benchmarks/results/volumes_cost.md
VOLUME_MODELS = (("cnn3d_small", 16, "3D ResNet-9 at width 16"),
                 ("resnet10_3d", None, "3D ResNet-10 (width 16)"),
                 ("resnet9_acs", None, "ResNet-9 with ACS convolutions (width 16)"),
                 ("resnet9_25d", None, "2.5D: three orthogonal planes as channels of a 2D ResNet-9"),
                 ("slices_resnet9_mean", None, "2D ResNet-9 per axial slice, features averaged"),
                 ("slices_resnet9_attn", None, "2D ResNet-9 per axial slice, gated-attention pooling"))
VOLUME_IMAGENET_MODELS = ("resnet18_25d", "resnet18_acs")
VOLUME_LEFT_OUT = {"resnet18_3d": "3D ResNet-18: about 3.5 times cnn3d_small's time per epoch on two CPU cores "
                                  "(volumes_cost.md); too few epochs fit a 10-minute budget",
                   "resnet18_acs": "ACS ResNet-18 from scratch at the paper's width 64: about 28 times "
                                   "cnn3d_small's time per epoch on two CPU cores (a GPU design)"}


@dataclass(frozen=True)
class Candidate:
    """One recipe to screen: ``overrides`` over the base configuration, the ``group`` (knob) it turns.

    ``cost``: its expected seconds per epoch relative to the base's, where that is known before it runs (another
    input size: the ratio of pixels or voxels); the screening uses it until the candidate's own epochs are timed.
    """

    name: str
    group: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    cost: float = 1.0

    def settings(self) -> dict[str, Any]:
        """The overrides as dotted keys (``{"train.lr": 0.004}``), for tables."""
        return _flatten(self.overrides)


@dataclass(frozen=True)
class PortfolioFacts:
    """What the portfolio depends on besides the base configuration.

    ``modality``: MedMNIST's modality text, or the manifest's preprocessing preset, or ``None``. ``mirror``:
    whether flips are allowed. ``other_sizes``: input sizes available besides the base's. ``imagenet``: model
    name -> whether its ImageNet weights are in the local cache. ``task``: the dataset's task. ``spatial_dims``:
    2 for images, 3 for volumes.
    """

    task: str
    modality: str | None = None
    mirror: bool = False
    other_sizes: tuple[int, ...] = ()
    imagenet: Mapping[str, bool] = field(default_factory=dict)
    size_note: str = ""
    spatial_dims: int = 2


def portfolio_facts(base: RunConfig, task: str, spatial_dims: int = 2) -> PortfolioFacts:
    """The facts for :func:`build_portfolio`: modality, whether to mirror, local sizes and cached weights."""
    d = base.data
    info = MEDMNIST.get(d.dataset) if d.manifest is None else None
    if d.manifest is not None:
        modality = d.preprocess.preset if d.preprocess.preset != "none" else None
        mirror = d.preprocess.preset in MIRRORED_PRESETS
        other = tuple(s for s in (28, 64) if s != d.size)
        note = ""
    elif info is not None:
        modality = info.modality
        mirror = any(word in info.modality.lower() for word in ORIENTATION_FREE)
        other, missing = [], []
        for s in (28, 64):
            if s == d.size or s not in info.sizes:
                continue
            found = any((p / info.filename(s)).is_file() for p in candidate_dirs(d.data_dir))
            (other if found else missing).append(s)
        other = tuple(other)
        note = (f"{', '.join(f'{s} px' for s in missing)}: {info.filename(missing[0])} is not on this machine "
                f"(nothing is downloaded)") if missing else ""
    else:  # an .npz path: one size, modality unknown
        modality, mirror, other, note = None, False, (), "a MedMNIST-layout .npz file holds one size"
    imagenet = {m: imagenet_cached(m) for m in (VOLUME_IMAGENET_MODELS if spatial_dims == 3 else IMAGENET_MODELS)}
    return PortfolioFacts(task=task, modality=modality, mirror=mirror, other_sizes=other, imagenet=imagenet,
                          size_note=note, spatial_dims=spatial_dims)


def build_portfolio(base: RunConfig, facts: PortfolioFacts) -> tuple[list[Candidate], list[dict[str, str]]]:
    """The candidates to screen, in screening order, and the options left out (``{"name", "reason"}``)."""
    t = base.train
    cands = [Candidate("base", "base", {}, "the base configuration")]
    absent: list[dict[str, str]] = []
    if not get_kind(facts.task).values:  # label smoothing is for classes, not regression values
        if t.label_smoothing == 0 and t.loss in ("auto", "cross-entropy", "bce"):
            cands.append(Candidate("smoothing-0.1", "label-smoothing", {"train": {"label_smoothing": 0.1}},
                                   "cross-entropy with label smoothing 0.1"))
        other = "none" if t.class_weights == "balanced" else "balanced"
        cands.append(Candidate(f"class-weights-{other}", "class-weights", {"train": {"class_weights": other}},
                               f"class weights {other}"))
    flips = "with mirrors" if facts.mirror else "no mirrors (orientation matters)"
    for level, values in (("light", AUGMENT_LIGHT), ("medium", AUGMENT_MEDIUM)):
        aug = {**_NO_AUGMENT, **values}
        if facts.mirror:
            aug.update(hflip=True, vflip=level == "medium", rot90=level == "medium")
        cands.append(Candidate(f"augment-{level}", "augmentation", {"train": {"augment": aug}},
                               f"{level} augmentation, {flips}"))
    if t.augment.enabled:
        cands.append(Candidate("augment-none", "augmentation", {"train": {"augment": _NO_AUGMENT}}, "no augmentation"))
    for factor in (2.0, 0.5):
        cands.append(Candidate(f"lr-x{factor:g}", "learning-rate", {"train": {"lr": round(t.lr * factor, 10)}},
                               f"learning rate {t.lr * factor:.3g}"))
    sched = "cosine" if t.schedule == "onecycle" else "onecycle"
    cands.append(Candidate(f"schedule-{sched}", "schedule", {"train": {"schedule": sched}}, f"{sched} schedule"))
    if facts.spatial_dims == 3:
        _volume_models(base, facts, cands, absent)
    else:
        _image_models(base, facts, cands, absent)
    return cands, absent


def _image_models(base: RunConfig, facts: PortfolioFacts, cands: list[Candidate], absent: list[dict]) -> None:
    m = base.model
    base_width = m.width if m.width is not None else RESNET9_WIDTH
    for w in WIDTHS:
        if not (m.name == "resnet9" and base_width == w):
            cands.append(Candidate(f"resnet9-w{w}", "model", {"model": {"name": "resnet9", "width": w}},
                                   f"ResNet-9 at width {w}"))
    for name in ("resnet18", *TIMM_MODELS):
        if m.name != name:
            cands.append(Candidate(name, "model", {"model": {"name": name, "width": None}}, f"{name}, random init"))
    _sizes_and_weights(base, facts, cands, absent, IMAGENET_MODELS)


def _volume_models(base: RunConfig, facts: PortfolioFacts, cands: list[Candidate], absent: list[dict]) -> None:
    m = base.model
    for name, width, note in VOLUME_MODELS:
        if m.name == name and (width is None or m.width == width):
            continue
        label = f"{name}-w{width}" if width else name
        cands.append(Candidate(label, "model", {"model": {"name": name, "width": width}}, note))
    _sizes_and_weights(base, facts, cands, absent, VOLUME_IMAGENET_MODELS)
    absent.extend({"name": name, "reason": why} for name, why in VOLUME_LEFT_OUT.items() if m.name != name)


def _sizes_and_weights(base: RunConfig, facts: PortfolioFacts, cands: list[Candidate], absent: list[dict],
                       imagenet_models: Sequence[str]) -> None:
    """The other input sizes (their cost known: pixels or voxels), and ImageNet starts whose weights are cached."""
    dims = facts.spatial_dims
    for size in facts.other_sizes:
        what = f"{size} px" if dims == 2 else f"{size}³ voxel"
        cands.append(Candidate(f"size-{size}", "input-size", {"data": {"size": size}}, f"{what} input",
                               cost=(size / base.data.size) ** dims))
    if facts.size_note:
        absent.append({"name": "input size", "reason": facts.size_note})
    for name in imagenet_models:
        if facts.imagenet.get(name):
            cands.append(Candidate(f"{name}-imagenet", "model",
                                   {"model": {"name": name, "width": None, "pretrained": "imagenet"}},
                                   f"{name} from ImageNet weights (found in the local cache)"))
        else:
            absent.append({"name": f"{name}-imagenet",
                           "reason": f"ImageNet weights for {name} are not in the local cache; there is no "
                                     f"download, so pretrained {name} is not a candidate"})


def combine(scored: Sequence[tuple[Candidate, float]], base_score: float) -> Candidate | None:
    """The best change of each group that beat the base, all together; ``None`` unless two groups contribute."""
    best: dict[str, tuple[Candidate, float]] = {}
    for cand, score in scored:
        if cand.group in ("base", "combination") or not score > base_score:
            continue
        if cand.group not in best or score > best[cand.group][1]:
            best[cand.group] = (cand, score)
    if len(best) < 2:
        return None
    parts = [c for c, _ in best.values()]
    merged: dict[str, Any] = {}
    for c in parts:
        merged = deep_merge(merged, c.overrides)
    return Candidate("combination", "combination", merged,
                     "the best change of each group that beat the base: " + " + ".join(c.name for c in parts))


def candidate_config(base: RunConfig, cand: Candidate, **train: Any) -> RunConfig:
    """``base`` with the candidate's overrides (and ``train`` settings such as ``epochs``), validated."""
    over = deep_merge(cand.overrides, {"train": train}) if train else cand.overrides
    return build_config(overrides=deep_merge(config_to_dict(base), over))


def select(cands: Sequence[Candidate], wanted: Sequence[str | Candidate] | None) -> list[Candidate]:
    """The candidates named in ``wanted`` (in the portfolio's order), then any :class:`Candidate` given there;
    an unknown name is an error with the nearest one."""
    if not wanted:
        return list(cands)
    known = {c.name: c for c in cands}
    names = [w for w in wanted if isinstance(w, str)]
    extra = [w for w in wanted if isinstance(w, Candidate)]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"Unknown candidate {unknown[0]!r}.{did_you_mean(unknown[0], known)} Candidates here: "
                          f"{', '.join(known)}.")
    chosen = [c for c in cands if c.name in names] + extra
    seen = [c.name for c in chosen]
    if len(set(seen)) != len(seen):
        dup = next(n for n in seen if seen.count(n) > 1)
        raise ConfigError(f"Candidate {dup!r} is given twice; each candidate needs its own name.")
    return chosen


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out

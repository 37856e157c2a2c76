"""``create_model``: build any registered network by name, adapted to classes, channels and size; ``build_model``:
the network a checkpoint's metadata describes (:mod:`medclass.models.checkpoint` reads and writes the file)."""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..tasks import Task, attach_coral_head, task_from_meta
from ._registry import get_builder, get_model_card
from .checkpoint import FORMAT
from .multiview import MultiViewNet
from .pretrained import load_pretrained

__all__ = ["create_model", "count_parameters", "build_model", "model_metadata"]

_BUILD_ARGS = ("num_classes", "in_chans", "input_size")


def create_model(name: str, *, num_classes: int, in_chans: int = 1, input_size: int | None = None,
                 pretrained: str | os.PathLike | bool | None = None, **kwargs) -> nn.Module:
    """Build model ``name`` for ``num_classes`` outputs on ``in_chans``-channel images of side ``input_size``.

    Every model exposes ``forward_features(x)`` and ``forward_head(x, pre_logits=False)``; ``forward`` is the
    two in sequence. Extra keyword arguments (``width``, ``drop_rate``, ``small_input``) go to the family's
    builder; ``None`` values are ignored, and an option the family does not have is a :class:`ConfigError`.

    Args:
        pretrained: initial weights: ``"imagenet"`` (or ``True``), a ``.safetensors`` / ``.pth`` / ``.pt``
            file, or a medclass run folder; ``None`` keeps the random initialisation. Weights are adapted
            to ``in_chans`` and ``num_classes`` (see :func:`medclass.models.load_pretrained`).

    Example:
        >>> m = create_model("resnet18", num_classes=2, in_chans=1, input_size=28)
        >>> m(torch.zeros(4, 1, 28, 28)).shape  # doctest: +SKIP
        torch.Size([4, 2])
    """
    card = get_model_card(name)
    input_size = card.input_size if input_size is None else input_size
    problems = []
    if num_classes < 1:
        problems.append(f"num_classes must be >= 1, got {num_classes}")
    if in_chans < 1:
        problems.append(f"in_chans must be >= 1, got {in_chans}")
    if input_size < card.min_input_size:
        problems.append(f"{name} needs images of at least {card.min_input_size} px, got {input_size}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    builder = get_builder(name)
    params = inspect.signature(builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        options = [p for p in params if p not in _BUILD_ARGS]
        for key in kwargs:
            if key not in params:
                what = {"width": " (model.width)", "drop_rate": " (model.dropout)"}.get(key, "")
                problems.append(f"{name} has no option {key!r}{what}; its options are: "
                                f"{', '.join(options) or 'none'}")
    if problems:
        raise ConfigError(f"Cannot build {name}: " + "; ".join(problems) + ".")
    model = builder(num_classes=num_classes, in_chans=in_chans, input_size=input_size, **kwargs)
    if pretrained is not None and pretrained is not False:
        load_pretrained(model, name, "imagenet" if pretrained is True else pretrained, in_chans=in_chans,
                        num_classes=num_classes)
    return model


def count_parameters(name: str, *, num_classes: int = 2, in_chans: int = 1, input_size: int | None = None,
                     **kwargs) -> int:
    """Number of parameters of ``create_model(name, ...)``, counted on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, in_chans=in_chans, input_size=input_size, **kwargs)
    return sum(p.numel() for p in model.parameters())


def build_model(meta: dict[str, Any]) -> torch.nn.Module:
    """The network a checkpoint's metadata describes, with the task's head (untrained).

    A run on cases of several images (``meta["case"]``: views, fusion, encoder) gets the 2D family wrapped in a
    :class:`~medclass.models.multiview.MultiViewNet`.
    """
    task = task_from_meta(meta)
    coral = task.head == "coral"
    outputs = 1 if coral else task.num_outputs(meta["num_classes"])
    case = meta.get("case")

    def make(num_classes: int) -> nn.Module:
        return create_model(meta["model"], num_classes=num_classes, in_chans=meta["in_chans"],
                            input_size=meta["input_size"], **meta["model_kwargs"])

    if case:
        size, drop = int(meta["input_size"]), meta["model_kwargs"].get("drop_rate") or 0.0
        model = MultiViewNet(lambda: make(1), views=len(case["views"]), num_classes=outputs, fusion=case["fusion"],
                             encoder=case["encoder"], probe=(int(meta["in_chans"]), size, size), drop_rate=drop)
    else:
        model = make(outputs)
    if coral:
        attach_coral_head(model, "fc" if case else get_model_card(meta["model"]).classifier, meta["num_classes"])
    return model


def model_metadata(*, model: str, model_kwargs: dict[str, Any], task: Task, labels: tuple[str, ...],
                   in_chans: int, input_size: int, positive_label: int | None, dataset: str,
                   pipeline: dict[str, Any], config: dict[str, Any], head_names: tuple[str, ...] = (),
                   case: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a checkpoint records so that it alone can rebuild the model and prepare its input."""
    norm = pipeline["normalize"]
    return {
        "format": FORMAT,
        "model": model,
        "model_kwargs": dict(model_kwargs),
        "num_classes": len(labels),
        "in_chans": int(in_chans),
        "input_size": int(input_size),
        **task.to_meta(),
        **({"head_names": list(head_names)} if head_names else {}),
        "labels": list(labels),
        "positive_label": positive_label,
        "mean": list(norm["mean"]),
        "std": list(norm["std"]),
        "normalize": norm,
        "pipeline": pipeline,
        "dataset": dataset,
        "config": config,
        **({"case": dict(case)} if case else {}),
    }

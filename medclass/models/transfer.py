"""Transfer-learning strategies: which parameters of a (pretrained) model train.

:func:`apply_transfer` sets ``requires_grad`` and returns the trainable parameters split into the
classifier (``"head"``, the card's ``classifier``) and everything else (``"backbone"``), so the optimiser
can give the backbone its own learning rate:

- ``full``: everything trains at one rate.
- ``discriminative``: everything trains; the caller gives ``"backbone"`` the learning rate times a factor
  (about 1/10, the usual "fine-tune with a lower rate" of Tajbakhsh et al., IEEE TMI 2016).
- ``linear``: only the classifier trains, on frozen features (a linear probe).
- ``last-k``: the classifier and the last ``k`` entries of ``card.blocks`` train; ``k=0`` is ``linear``.
  Parameters that lie in no listed block (a stem's batch norm, ViT's position embedding, DenseNet's
  final norm) belong to the nearest listed block before them, or to the first block.

Frozen parameters get ``requires_grad=False`` and appear in neither list. Frozen batch-norm layers must
also stop updating their running statistics, or ``model.train()`` would still change the frozen
network: :func:`apply_transfer` registers a forward pre-hook on each one that puts it back into eval
mode before every forward pass, so no training loop has to remember it. :func:`freeze_bn_stats` does the
same once, for code that prefers to call it after ``model.train()``.
"""

from __future__ import annotations

import logging

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import ConfigError, did_you_mean
from ._registry import ModelCard

__all__ = ["TRANSFER_STRATEGIES", "apply_transfer", "freeze_bn_stats", "parameter_blocks"]

log = logging.getLogger(__name__)

TRANSFER_STRATEGIES = ("full", "linear", "last-k", "discriminative")


def parameter_blocks(model: nn.Module, card: ModelCard) -> tuple[list[nn.Parameter], list[list[nn.Parameter]]]:
    """``(head, blocks)``: the classifier's parameters and the backbone's, one list per ``card.blocks`` entry.

    With no blocks on the card, the whole backbone is one block.
    """
    modules = dict(model.named_modules())
    missing = [p for p in (card.classifier, *card.blocks) if p not in modules]
    if missing:
        raise ConfigError(f"{card.name}'s card names modules the model does not have: {', '.join(missing)}.")
    head_prefix = card.classifier + "."
    prefixes = [b + "." for b in card.blocks]
    head: list[nn.Parameter] = []
    blocks: list[list[nn.Parameter]] = [[] for _ in card.blocks] or [[]]
    current = 0
    for name, p in model.named_parameters():
        if name.startswith(head_prefix):
            head.append(p)
            continue
        current = next((i for i, pre in enumerate(prefixes) if name.startswith(pre)), current)
        blocks[current].append(p)
    return head, blocks


def apply_transfer(model: nn.Module, card: ModelCard, strategy: str = "full",
                   trainable_blocks: int = 1) -> dict[str, list[nn.Parameter]]:
    """Freeze what ``strategy`` keeps fixed; return ``{"head": [...], "backbone": [...]}`` of trainable parameters.

    Args:
        model: a model built by ``create_model(card.name, ...)``.
        card: its model card (classifier path and block order).
        strategy: ``full``, ``linear``, ``last-k`` or ``discriminative`` (see the module docstring).
        trainable_blocks: ``last-k`` only: how many of the last ``card.blocks`` train (0 to ``len(blocks)``).

    Example:
        >>> groups = apply_transfer(model, get_model_card("resnet18"), "discriminative")  # doctest: +SKIP
        >>> torch.optim.AdamW([{"params": groups["head"], "lr": 1e-3},
        ...                    {"params": groups["backbone"], "lr": 1e-4}])  # doctest: +SKIP
    """
    if strategy not in TRANSFER_STRATEGIES:
        raise ConfigError(f"model.transfer must be one of {', '.join(TRANSFER_STRATEGIES)}. Got {strategy!r} "
                          f"instead.{did_you_mean(strategy, TRANSFER_STRATEGIES)}")
    head, blocks = parameter_blocks(model, card)
    if strategy in ("full", "discriminative"):
        n_train = len(blocks)
    elif strategy == "linear":
        n_train = 0
    else:
        n_blocks = len(card.blocks)
        if not 0 <= trainable_blocks <= n_blocks:
            listing = f" ({', '.join(card.blocks)})" if card.blocks else ""
            raise ConfigError(f"model.trainable_blocks={trainable_blocks} but {card.name} has {n_blocks} blocks"
                              f"{listing}. Give 0 to {n_blocks}, or use model.transfer=full.")
        n_train = trainable_blocks
    frozen = [p for b in blocks[:len(blocks) - n_train] for p in b]
    backbone = [p for b in blocks[len(blocks) - n_train:] for p in b]
    for p in frozen:
        p.requires_grad_(False)
    for p in (*head, *backbone):
        p.requires_grad_(True)
    n_bn = _hook_frozen_bn(model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in (*head, *backbone))
    log.info("%s, transfer=%s: %s of %s parameters train (%d batch-norm layers frozen in eval mode)", card.name,
             strategy, f"{trainable:,}", f"{total:,}", n_bn)
    return {"head": head, "backbone": backbone}


def _is_frozen_bn(m: nn.Module) -> bool:
    params = list(m.parameters(recurse=False))
    return isinstance(m, _BatchNorm) and bool(params) and not any(p.requires_grad for p in params)


def freeze_bn_stats(model: nn.Module) -> int:
    """Put every batch-norm layer whose parameters are all frozen into eval mode; return how many.

    Call it after ``model.train()`` (which would otherwise let frozen layers keep updating their running
    mean and variance). Not needed after :func:`apply_transfer`, whose hooks do this on every forward.
    """
    n = 0
    for m in model.modules():
        if _is_frozen_bn(m):
            m.eval()
            n += 1
    return n


def _keep_eval(module: nn.Module, args: tuple) -> None:
    module.eval()


def _hook_frozen_bn(model: nn.Module) -> int:
    n = 0
    for m in model.modules():
        for key in [k for k, h in m._forward_pre_hooks.items() if h is _keep_eval]:
            del m._forward_pre_hooks[key]  # from an earlier apply_transfer
        if _is_frozen_bn(m):
            m.register_forward_pre_hook(_keep_eval)
            n += 1
    return n

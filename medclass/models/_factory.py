"""``create_model``: build any registered network by name, adapted to classes, channels and size."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ._registry import get_builder, get_model_card

__all__ = ["create_model"]


def create_model(name: str, *, num_classes: int, in_chans: int = 1, input_size: int | None = None,
                 **kwargs) -> nn.Module:
    """Build model ``name`` for ``num_classes`` outputs on ``in_chans``-channel images of side ``input_size``.

    Every model exposes ``forward_features(x)`` and ``forward_head(x, pre_logits=False)``; ``forward`` is the
    two in sequence. Extra keyword arguments (``width``, ``drop_rate``) go to the family's builder.

    Example:
        >>> m = create_model("resnet18", num_classes=2, in_chans=1, input_size=28)
        >>> m(torch.zeros(4, 1, 28, 28)).shape  # doctest: +SKIP
        torch.Size([4, 2])
    """
    card = get_model_card(name)
    input_size = input_size or card.input_size
    problems = []
    if num_classes < 1:
        problems.append(f"num_classes must be >= 1, got {num_classes}")
    if in_chans < 1:
        problems.append(f"in_chans must be >= 1, got {in_chans}")
    if input_size < card.min_input_size:
        problems.append(f"{name} needs images of at least {card.min_input_size} px, got {input_size}")
    if problems:
        raise ConfigError(f"Cannot build {name}: " + "; ".join(problems) + ".")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return get_builder(name)(num_classes=num_classes, in_chans=in_chans, input_size=input_size, **kwargs)

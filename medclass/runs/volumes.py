"""Images or volumes: the model must take the data's number of spatial axes, and a volume run's defaults.

A dataset knows whether it holds images (``spatial_dims=2``, ``(N, H, W, C)``) or volumes (``3``,
``(N, D, H, W, C)``); a model's card says which it takes (``medclass models list`` marks the 3D ones).
:func:`match_model` checks the two agree before anything is built. A volume dataset trained with the default
(2D) model gets :data:`VOLUME_MODEL` instead, recorded in the run's configuration: the CPU-sized 3D ResNet-9
(``cnn3d_small``, width 8), the cheapest 3D CNN of the prototype on AdrenalMNIST3D
(``benchmarks/results/volumes_prototype.md``: about 25 CPU s per epoch at 28³, validation AUC 0.84 after 6
epochs, within noise of ``resnet10_3d`` at width 16, which costs 2.5 times as much).
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from ..config import ModelConfig, RunConfig, replace
from ..data.datasets import ImageDataset
from ..errors import ConfigError
from ..models import get_model_card, list_models

__all__ = ["VOLUME_MODEL", "match_model", "use_channels_last", "case_model", "check_case_model"]

log = logging.getLogger(__name__)

VOLUME_MODEL = {"name": "cnn3d_small", "width": 8}  # the model a volume dataset trains when none is chosen
_DEFAULT_2D = ModelConfig().name


def match_model(cfg: RunConfig, spatial_dims: int, dataset: str) -> RunConfig:
    """``cfg`` with a model that takes ``spatial_dims`` spatial axes; a mismatch is a one-line ConfigError.

    The untouched default model (``model.name`` resnet9, no width) on volumes becomes :data:`VOLUME_MODEL`.
    """
    m = cfg.model
    dims = get_model_card(m.name).spatial_dims
    if dims == spatial_dims:
        return cfg
    if spatial_dims == 3 and m.name == _DEFAULT_2D and m.width is None and not m.pretrained:
        # a warning, not info: `--model resnet9` given on purpose looks the same as no --model (the config cannot
        # tell them apart), so the substitution is always said where the user sees it
        log.warning("%s holds volumes and %s takes 2D images: training the 3D default %s (width %d) instead; "
                    "choose another 3D model with --model (medclass models list)", dataset, m.name,
                    VOLUME_MODEL["name"], VOLUME_MODEL["width"])
        return replace(cfg, model=dataclasses.replace(m, **VOLUME_MODEL))
    if spatial_dims == 3:
        raise ConfigError(f"model.name={m.name} is a 2D model but {dataset} holds 3D volumes. Choose a 3D model "
                          f"({', '.join(list_models(spatial_dims=3))}; `medclass models list`), or leave --model "
                          f"unset for {VOLUME_MODEL['name']}.")
    raise ConfigError(f"model.name={m.name} is a 3D model but {dataset} holds 2D images. Choose a 2D model "
                      f"(`medclass models list`, e.g. {_DEFAULT_2D}), or a 3D dataset (`medclass data list`).")


def use_channels_last(model: torch.nn.Module, wanted: bool, spatial_dims: int) -> torch.nn.Module:
    """``model`` in channels-last memory layout when ``wanted`` (``train.channels_last``) and it takes images;
    the layout is 2D-only, so a volume model is left as it is."""
    return model.to(memory_format=torch.channels_last) if wanted and spatial_dims == 2 else model


def case_model(cfg: RunConfig, ds: ImageDataset) -> dict | None:
    """How a dataset of cases (several images per example, ``ds.views``) is modelled: the views, the fusion
    (``model.fusion``; auto: concat for named views, gated attention for slices) and the encoder sharing; ``None``
    for single images and volumes."""
    if not ds.views:
        return None
    fusion = cfg.model.fusion
    if fusion == "auto":
        fusion = "concat" if ds.facts.get("cases", {}).get("view_kind", "views") == "views" else "attn"
    return {"views": list(ds.views), "fusion": fusion, "encoder": cfg.model.view_encoder}


def check_case_model(cfg: RunConfig, ds: ImageDataset) -> RunConfig:
    """``cfg`` with ``model.fusion`` resolved for a dataset of cases (recorded so in the run's configuration); a
    one-line ConfigError for what cases cannot do yet: transfer modes other than ``full``."""
    if not ds.views:
        return cfg
    if cfg.model.transfer != "full":
        raise ConfigError(f"{ds.name} holds cases of {len(ds.views)} images and model.transfer={cfg.model.transfer} "
                          f"freezes parts of one network; with cases every view's encoder trains (model.transfer="
                          f"full), optionally from pretrained weights (model.pretrained).")
    return replace(cfg, model=dataclasses.replace(cfg.model, fusion=case_model(cfg, ds)["fusion"]))

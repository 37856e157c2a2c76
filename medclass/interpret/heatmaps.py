"""Where the model looks: class activation maps, Grad-CAM, Grad-CAM++ and occlusion sensitivity.

The maths is MONAI's (``monai.visualize``: ``CAM`` after Zhou et al., CVPR 2016; ``GradCAM`` after
Selvaraju et al., ICCV 2017; ``GradCAMpp`` after Chattopadhay et al., WACV 2018; ``OcclusionSensitivity``
after Zeiler & Fergus, ECCV 2014). What medclass adds is the choice of layer: every registered model's
card names the layer CAM should hook (``cam_layer``) and its classifier (``classifier``), so a user never
has to guess which of a network's 60 modules to pass (MONAI issues #3035, #1659). Any named module can
still be given instead.

Every map is returned at the input's resolution, one per image, scaled to [0, 1] per image (1 = most
important for the chosen class). 2D and 3D inputs work alike.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from monai.visualize import CAM, GradCAM, GradCAMpp, OcclusionSensitivity
from torch import nn

from ..errors import ConfigError, did_you_mean

__all__ = ["METHODS", "compute_heatmaps", "resolve_layer"]

METHODS = ("cam", "gradcam", "gradcam++", "occlusion")


def resolve_layer(model: nn.Module, name: str, what: str = "layer") -> str:
    """Check that ``name`` is a module of ``model``; a clear error with the nearest name otherwise."""
    names = [n for n, _ in model.named_modules() if n]
    if name not in names:
        raise ConfigError(f"The model has no {what} named {name!r}.{did_you_mean(name, names)} "
                          f"Its modules include: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}.")
    return name


def _scale01(maps: np.ndarray) -> np.ndarray:
    flat = maps.reshape(len(maps), -1)
    lo, hi = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
    return ((flat - lo) / np.where(hi > lo, hi - lo, 1.0)).reshape(maps.shape)


def compute_heatmaps(model: nn.Module, x: torch.Tensor, method: str = "gradcam", class_idx: int | None = None,
                     target_layer: str | None = None, classifier: str | None = None,
                     occlusion_mask: int | None = None) -> np.ndarray:
    """Heatmaps ``(N, *spatial)`` in [0, 1] for ``class_idx`` (default: each image's predicted class).

    Args:
        model: a classifier taking ``(N, C, *spatial)``.
        x: the normalised input batch, as the model sees it.
        method: cam, gradcam, gradcam++ or occlusion.
        class_idx: the class to explain; ``None`` explains each image's arg-max class.
        target_layer: module whose output is mapped (CAM / Grad-CAM); usually the model card's ``cam_layer``.
        classifier: CAM only: the linear layer applied at every position (the card's ``classifier``).
        occlusion_mask: occlusion only: side of the occluding patch in pixels (default: a quarter of the side).
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown explanation method {method!r}.{did_you_mean(method, METHODS)} "
                          f"Available: {', '.join(METHODS)}.")
    was_training = model.training
    model.eval()
    x = x.detach().float().contiguous()  # hooks and occlusion expect plain contiguous tensors
    hooks_before = {id(m): (set(m._forward_hooks), set(m._backward_hooks)) for m in model.modules()}
    with warnings.catch_warnings():
        # PyTorch notes that MONAI's full backward hook fires on module outputs when the input needs no
        # gradient (a first layer as target): expected here, and harmless.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        return _compute(model, x, method, class_idx, target_layer, classifier, occlusion_mask, hooks_before,
                        was_training)


def _compute(model, x, method, class_idx, target_layer, classifier, occlusion_mask, hooks_before,
             was_training) -> np.ndarray:
    try:
        if method == "occlusion":
            maps = _occlusion(model, x, class_idx, occlusion_mask)
        else:
            if target_layer is None:
                raise ConfigError(f"{method} needs a target layer (the model card's cam_layer).")
            resolve_layer(model, target_layer)
            kwargs = {"class_idx": class_idx} if class_idx is not None else {}
            if method == "cam":
                if classifier is None:
                    raise ConfigError("CAM needs the classifier layer (the model card's classifier).")
                resolve_layer(model, classifier, "classifier")
                explainer = CAM(nn_module=model, target_layers=target_layer, fc_layers=classifier,
                                postprocessing=lambda m: m)
                if class_idx is not None:  # MONAI's CAM takes one class index per image
                    kwargs = {"class_idx": [class_idx] * len(x)}
                with torch.no_grad():
                    maps = explainer(x, **kwargs)
            else:
                cls = GradCAM if method == "gradcam" else GradCAMpp
                explainer = cls(nn_module=model, target_layers=target_layer, postprocessing=lambda m: m)
                # MONAI back-propagates the sum of the selected scores over the batch; with one class per
                # call that is exactly each image's own gradient. So images are grouped by the class explained.
                if class_idx is None:
                    with torch.no_grad():
                        targets = model(x).argmax(1)
                else:
                    targets = torch.full((len(x),), class_idx, dtype=torch.long)
                maps = torch.zeros((len(x), 1, *x.shape[2:]))
                if method == "gradcam++":
                    # MONAI's GradCAMpp multiplies the squeezed (batch,) score into (batch, C, *spatial)
                    # gradients, which only broadcasts for a batch of one: explain one image at a time.
                    for i in range(len(x)):
                        maps[i] = explainer(x[i:i + 1], class_idx=int(targets[i]))[0].detach().cpu().float()
                else:
                    for c in targets.unique().tolist():
                        sel = targets == c
                        maps[sel] = explainer(x[sel], class_idx=int(c)).detach().cpu().float()
            maps = maps.detach().cpu().numpy()[:, 0]
    finally:
        _remove_new_hooks(model, hooks_before)
        model.train(was_training)
    return _scale01(maps.astype(np.float64))


def _occlusion(model: nn.Module, x: torch.Tensor, class_idx: int | None, mask: int | None) -> np.ndarray:
    side = mask or max(2, min(x.shape[2:]) // 4)
    occ = OcclusionSensitivity(nn_module=model, mask_size=side, n_batch=64, verbose=False, mode="mean_img",
                               overlap=0.75)
    out = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MONAI's indexing deprecation notices
        logits = model(x)
        probs = torch.softmax(logits, 1) if logits.shape[1] > 1 else torch.sigmoid(logits)
        for i in range(len(x)):
            occ_map, _ = occ(x[i:i + 1])  # (1, classes, *spatial): class probabilities with each region hidden
            c = int(probs[i].argmax()) if class_idx is None else class_idx
            # importance: how much the class probability drops when a region is hidden
            out.append((probs[i, c] - occ_map[0, c]).cpu().numpy())
    return np.stack(out)


def _remove_new_hooks(model: nn.Module, before: dict[int, tuple[set, set]]) -> None:
    # MONAI's ModelWithHooks registers forward/backward hooks and keeps no handles; remove exactly the ones
    # added while explaining, so the model can be explained again (or trained) without stale hooks.
    for m in model.modules():
        fwd, bwd = before.get(id(m), (set(), set()))
        for k in set(m._forward_hooks) - fwd:
            del m._forward_hooks[k]
        for k in set(m._backward_hooks) - bwd:
            del m._backward_hooks[k]

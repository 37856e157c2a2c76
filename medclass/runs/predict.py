"""Use a finished run on new images: ``medclass predict`` and ``medclass.load_run(...).predict_proba``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..data.images import conform, pil_to_array, read_image
from ..errors import ConfigError, DataError
from ..tasks import split_heads, task_from_meta
from ..training.checkpoint import load_weights
from ..transforms.intensity import Normalizer, to_float
from .folder import RunFolder

__all__ = ["TrainedModel", "load_run"]

ImageLike = str | os.PathLike | np.ndarray | Image.Image


class TrainedModel:
    """A trained network with its data contract, ready to predict (scikit-learn style).

    Attributes:
        classes_: class (or label) names, in output order.
        task_: binary, multiclass, ordinal or multilabel.
        input_size_, in_chans_: what images are converted to before the forward pass.
        meta_: everything the checkpoint records (model, config, epoch chosen, validation AUC).
    """

    def __init__(self, model: torch.nn.Module, meta: dict[str, Any], device: torch.device | str = "cpu",
                 tta: bool = False, threshold: float = 0.5):
        self.model = model.eval().to(device)
        self.meta_ = meta
        self.device = torch.device(device)
        self.tta = tta
        self.threshold = threshold
        self.classes_ = list(meta["labels"])
        self.task_ = meta["task"]
        self.input_size_ = int(meta["input_size"])
        self.in_chans_ = int(meta["in_chans"])
        self._norm = Normalizer.from_meta(meta)

    def prepare(self, images: ImageLike | Sequence[ImageLike]) -> np.ndarray:
        """Convert files, PIL images or uint8 arrays to the uint8 ``(N, size, size, C)`` batch the model expects.

        A 4-D uint8 array is taken as a batch ``(N, H, W, C)``; a 3-D array with a last axis of 1, 3 or 4 as
        one image; any other 3-D array as a batch of grey images ``(N, H, W)``.
        """
        items = self._as_items(images)
        out = np.empty((len(items), self.input_size_, self.input_size_, self.in_chans_), dtype=np.uint8)
        for i, (item, where) in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                arr = read_image(item)
            elif isinstance(item, Image.Image):
                arr = pil_to_array(item, where)
            else:
                arr = item
            out[i] = conform(arr, self.input_size_, self.in_chans_, where)
        return out

    def _as_items(self, images) -> list[tuple[Any, str]]:
        if isinstance(images, (str, os.PathLike, Image.Image)):
            images = [images]
        if isinstance(images, np.ndarray):
            if images.ndim == 4 or (images.ndim == 3 and images.shape[-1] not in (1, 3, 4)):
                return [(im, f"images[{i}]") for i, im in enumerate(images)]
            if images.ndim in (2, 3):
                return [(images, "image")]
            raise DataError(f"Cannot interpret an array of shape {images.shape} as images.")
        items = list(images)
        if not items:
            raise DataError("No images were given to predict.")
        return [(im, str(im) if isinstance(im, (str, os.PathLike)) else f"images[{i}]") for i, im in enumerate(items)]

    def to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        """A uint8 batch from :meth:`prepare` as the normalised float tensor the network eats."""
        return self._norm(to_float(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)))

    @torch.no_grad()
    def predict_proba(self, images: ImageLike | Sequence[ImageLike], batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``(n_images, n_classes)`` (per-label probabilities for multi-label; the predicted
        values ``(n_images, 1)`` for regression; each head's probabilities side by side for multi-task)."""
        batch = self.prepare(images)
        task = task_from_meta(self.meta_)
        out = []
        for i in range(0, len(batch), batch_size):
            x = self.to_tensor(batch[i:i + batch_size])
            p = task.probabilities(self.model(x))
            if self.tta:
                p = (p + task.probabilities(self.model(x.flip(3)))) / 2
            out.append(p.float().cpu())
        return torch.cat(out).numpy()

    def predict(self, images: ImageLike | Sequence[ImageLike]) -> np.ndarray:
        """Predicted class indices (binary: class 1 when its probability > threshold), or 0/1 per label."""
        return self.decide(self.predict_proba(images))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Turn probabilities from :meth:`predict_proba` into decisions with the run's threshold."""
        if self.task_ == "multilabel":
            return (proba > self.threshold).astype(int)
        if self.task_ == "regression":
            return proba[:, 0]
        if self.task_ == "multitask":  # one class index per head
            return np.stack([p.argmax(1) for p in split_heads(proba, tuple(self.meta_["task_heads"]))], axis=1)
        if self.task_ == "binary":
            return (proba[:, 1] > self.threshold).astype(int)
        return proba.argmax(1)

    def describe(self, decisions: np.ndarray) -> list[str]:
        """Each decision of :meth:`decide` in words: class name, ``;``-joined labels, value, or one class per head."""
        names = self.classes_
        if self.task_ == "multilabel":
            return [";".join(n for n, v in zip(names, d) if v) or "(none)" for d in decisions]
        if self.task_ == "regression":
            return [f"{float(d):.6g}" for d in decisions]
        if self.task_ == "multitask":
            offsets = np.cumsum([0, *self.meta_["task_heads"]])[:-1]
            return [";".join(names[o + int(c)] for o, c in zip(offsets, d)) for d in decisions]
        return [names[int(d)] for d in decisions]

    def predict_coarse_proba(self, images: ImageLike | Sequence[ImageLike]) -> tuple[list[str], np.ndarray]:
        """With a class taxonomy (``eval.taxonomy``): the coarse class names and their probabilities, each the sum
        of its fine classes' probabilities."""
        from ..evaluation.taxonomy import parse_taxonomy

        entries = self.meta_.get("config", {}).get("eval", {}).get("taxonomy") or []
        if not entries:
            raise ConfigError("This run has no class taxonomy (eval.taxonomy); coarse classes are not defined.")
        tax = parse_taxonomy(entries, self.classes_)
        return list(tax.coarse), tax.probabilities(self.predict_proba(images))

    def __repr__(self) -> str:
        return (f"TrainedModel({self.meta_['model']}, task={self.task_}, classes={self.classes_}, "
                f"input={self.input_size_}px x{self.in_chans_})")


def load_run(run_dir: str | os.PathLike, device: str = "cpu", checkpoint: str = "best") -> TrainedModel:
    """Load the validation-chosen checkpoint of a finished run (``checkpoint="last"``: the final epoch's).

    Example:
        >>> model = load_run("runs/b0")  # doctest: +SKIP
        >>> model.predict_proba(["a.png", "b.png"])  # doctest: +SKIP
        array([[0.12, 0.88], [0.91, 0.09]], dtype=float32)
    """
    from .train import build_model

    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    folder = RunFolder(run_dir).require_complete()
    state, meta = load_weights(folder.best_weights if checkpoint == "best" else folder.last_weights)
    model = build_model(meta)
    model.load_state_dict(state)
    cfg = meta.get("config", {})
    ev = cfg.get("eval", {})
    return TrainedModel(model, meta, device=device, tta=bool(ev.get("tta", False)),
                        threshold=float(ev.get("threshold", 0.5)))



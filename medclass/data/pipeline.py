"""The input pipeline: everything that turns a file (or an array) into the network's input tensor, as one object.

A trained model is only as good as the match between the pixels it was trained on and the pixels it is given.
:class:`InputPipeline` holds every setting of that path and is the only code that walks it:

1. **read** a file (:func:`medclass.data.readers.read_file`: DICOM with its modality LUT and MONOCHROME1
   inversion, NIfTI, 8/16-bit PNG/TIFF/JPEG) at the chosen DICOM frame / NIfTI slice (``frame``, ``slice_axis``);
2. **preprocess** it to a uint8 image of ``size`` x ``size`` x ``channels``
   (:func:`medclass.transforms.preprocess.preprocess`: windows, presets, CLAHE, field-of-view crop, colour
   constancy, MRI z-score, resize mode, channel conversion);
3. **normalise** a uint8 batch into the float tensor the network eats
   (:func:`~medclass.transforms.intensity.to_float`, then the :class:`~medclass.transforms.intensity.Normalizer`
   whose statistics were measured on the training split).

Training decodes a manifest through steps 1-2 (the decode cache holds their output) and batches through step 3;
evaluation, ``medclass predict``, ``load_run(...).predict_proba``, ``medclass explain``, ensembles and exported
models use the same object, saved in the run folder (``preprocessing.json``) and inside every checkpoint, so a
model is applied to new patients' images exactly as it was trained. ``expected`` records what the training
files were (DICOM modalities and photometric interpretations, file kinds) so that a file of another kind is
named in a warning rather than silently scored.

Volumes (``spatial_dims=3``, the MedMNIST 3D subsets) take the same three steps with the 3D readers and
preprocessing: a NIfTI file, a DICOM series folder or a multi-frame DICOM file is read whole
(:func:`medclass.data.series.read_any_volume`) and preprocessed to a uint8 ``(size, size, size, channels)``
cube (:func:`medclass.transforms.volume.preprocess_volume`); batches ``(N, D, H, W, C)`` become
``(N, C, D, H, W)`` tensors.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..config import PreprocessConfig, config_from_dict, config_to_dict
from ..errors import DataError
from ..transforms.intensity import Normalizer, to_float
from ..transforms.preprocess import preprocess, resolve_steps
from ..transforms.volume import preprocess_volume
from .images import pil_to_array
from .readers import Decoded, read_file
from .series import read_any_volume

__all__ = ["InputPipeline", "FORMAT"]

FORMAT = "medclass-pipeline-1"


@dataclass(frozen=True)
class InputPipeline:
    """How a file becomes the network's input (module docstring). Serialise with :meth:`to_dict`.

    Attributes:
        size: side of the square image the network sees, in pixels.
        channels: 1 or 3; ``None`` (only while a dataset is being decoded) keeps each file's natural count.
        preprocess: decode-time preprocessing (``data.preprocess``).
        frame: the DICOM frame / NIfTI slice / TIFF page of a multi-frame file: ``"middle"`` or an index.
        slice_axis: NIfTI volumes: the RAS axis sliced (0 sagittal, 1 coronal, 2 axial).
        normalize: the normaliser's description (:meth:`Normalizer.to_meta`), measured on the training split.
        expected: facts about the training files (``sources``, ``modalities``, ``photometric``).
        spatial_dims: 2 for images, 3 for volumes (``size`` is then the side of a cube).
        views: a model of cases of several images (:mod:`medclass.data.cases`): the views it takes, in order; each
            image goes through steps 1 and 2 on its own, and the case's images are stacked ``(V, H, W, C)``.
    """

    size: int
    channels: int | None = None
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    frame: str = "middle"
    slice_axis: int = 2
    normalize: dict[str, Any] = field(default_factory=lambda: {"kind": "fixed", "mean": [0.5], "std": [0.5]})
    expected: dict[str, Any] = field(default_factory=dict)
    spatial_dims: int = 2
    views: tuple[str, ...] = ()

    # --- steps 1 and 2: file -> uint8 image ---------------------------------------------------------

    def read(self, path: str | os.PathLike) -> Decoded:
        """Decode ``path`` at the pipeline's frame and slice axis (step 1)."""
        frame: str | int = "middle" if self.frame == "middle" else int(self.frame)
        return read_file(path, frame=frame, slice_axis=self.slice_axis)

    def to_image(self, decoded: Decoded, where: str = "image") -> np.ndarray:
        """A decoded file as the uint8 ``(size, size, channels)`` image training used (step 2)."""
        return preprocess(decoded, self.preprocess, self.size, channels=self.channels, where=where)

    def read_volume(self, path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
        """Step 1 for a volume: a NIfTI file, a DICOM series folder or a multi-frame DICOM file, whole, as float32
        ``(D, H, W)`` in its own units, with the reader's technical facts (:func:`read_any_volume`)."""
        return read_any_volume(path)

    def volume_to_image(self, volume: np.ndarray, facts: dict[str, Any], where: str = "volume") -> np.ndarray:
        """A volume read by :meth:`read_volume` as the uint8 ``(size, size, size, channels)`` cube (step 2)."""
        return preprocess_volume(volume, facts, self.preprocess, self.size, channels=self.channels, where=where)

    def load(self, path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
        """Steps 1 and 2 for a file: ``(image, warnings)``, the warnings naming what differs from training."""
        if self.spatial_dims == 3:
            volume, facts = self.read_volume(path)
            return self.volume_to_image(volume, facts, str(path)), []
        dec = self.read(path)
        return self.to_image(dec, str(path)), self.check(dec, str(path))

    def from_array(self, image: np.ndarray | Image.Image, where: str = "image") -> np.ndarray:
        """Step 2 for an in-memory image: a PIL image, or a uint8 / uint16 array ``(H, W)`` or ``(H, W, 1|3|4)``.

        The array is taken as the pixels of an 8-bit (uint8) or 16-bit (uint16) image file, so it is
        preprocessed exactly as a PNG with those pixels would be.
        """
        if self.spatial_dims == 3:
            return self._volume_from_array(np.asarray(image), where)
        if isinstance(image, Image.Image):
            image = pil_to_array(image, where)
        a = np.asarray(image)
        if a.dtype not in (np.uint8, np.uint16):
            raise DataError(f"{where}: an image array must hold uint8 (0-255) or uint16 pixels, as an image file "
                            f"does; got dtype {a.dtype}. Pass the file itself (DICOM, NIfTI, PNG, ...), or convert "
                            f"the array, e.g. np.clip(x, 0, 255).astype(np.uint8) if it holds 8-bit values.")
        if a.ndim == 2:
            a = a[..., None]
        if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
            raise DataError(f"{where}: expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array; got shape "
                            f"{a.shape}.")
        if a.shape[2] == 4:
            a = a[..., :3]
        bits = 8 if a.dtype == np.uint8 else 16
        dec = Decoded(a.astype(np.float32), "image", None, False, None, bits, (0.0, float(2 ** bits - 1)), 1)
        return self.to_image(dec, where)

    def _volume_from_array(self, a: np.ndarray, where: str) -> np.ndarray:
        """A uint8 / uint16 volume ``(D, H, W)`` or ``(D, H, W, C)``; a uint8 one already at the trained shape (as
        the MedMNIST 3D arrays are) is used as it is, anything else goes through the 3D preprocessing."""
        if a.dtype not in (np.uint8, np.uint16):
            raise DataError(f"{where}: a volume array must hold uint8 (0-255) or uint16 voxels; got dtype {a.dtype}. "
                            f"Pass the file itself (NIfTI, DICOM series), or convert the array.")
        if a.ndim == 3:
            a = a[..., None]
        if a.ndim != 4 or a.shape[-1] not in (1, 3):
            raise DataError(f"{where}: expected a (D, H, W) or (D, H, W, 1|3) volume; got shape {a.shape}.")
        if a.dtype == np.uint8 and a.shape == (self.size,) * 3 + (self.channels or a.shape[-1],):
            return np.ascontiguousarray(a)
        if a.shape[-1] == 3:
            raise DataError(f"{where}: a 3-channel volume of shape {a.shape} cannot be resized; give a (D, H, W) "
                            f"volume or one of {self.size}x{self.size}x{self.size}.")
        return preprocess_volume(a[..., 0], {"value_range": (0.0, 255.0)} if a.dtype == np.uint8 else {},
                                 self.preprocess, self.size, channels=self.channels, where=where)

    def check(self, decoded: Decoded, where: str) -> list[str]:
        """Warnings for a file unlike the training files: another kind, DICOM modality or photometric
        interpretation. It is still preprocessed the training way; the warning says what to look at."""
        out = []
        exp = self.expected
        checks = (("sources", decoded.source, "file kind"), ("modalities", decoded.modality, "DICOM Modality"),
                  ("photometric", decoded.photometric, "DICOM Photometric Interpretation"))
        for key, value, name in checks:
            seen = exp.get(key)
            if seen and value is not None and value not in seen:
                out.append(f"{where}: {name} is {value}, but the model was trained on {', '.join(seen)} "
                           f"({name}). Its prediction may not be trustworthy.")
        return out

    # --- step 3: uint8 batch -> normalised float tensor ------------------------------------------------

    @cached_property
    def normalizer(self) -> Normalizer:
        return Normalizer.from_meta({"normalize": self.normalize})

    def to_tensor(self, batch: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
                  channels_last: bool = False) -> torch.Tensor:
        """A uint8 ``(N, size, size, C)`` batch as the normalised float ``(N, C, size, size)`` tensor (step 3);
        volumes ``(N, D, H, W, C)`` as ``(N, C, D, H, W)`` (``channels_last`` applies to images only)."""
        x = torch.as_tensor(np.ascontiguousarray(batch) if isinstance(batch, np.ndarray) else batch)
        x = self.normalizer(to_float(x.to(device)))
        return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x

    # --- building and saving ------------------------------------------------------------------------

    def with_(self, **changes: Any) -> InputPipeline:
        """A copy with some fields changed (channels resolved, statistics measured, facts recorded)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line for logs, reports and model cards."""
        side = "x".join([str(self.size)] * self.spatial_dims)
        return (f"{resolve_steps(self.preprocess).describe()} to {side}x{self.channels or '?'}, "
                f"normalised {self.normalize.get('kind', 'fixed')}")

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "size": self.size, "channels": self.channels,
                "preprocess": config_to_dict(self.preprocess), "frame": self.frame, "slice_axis": self.slice_axis,
                "normalize": self.normalize, "expected": self.expected,
                **({"spatial_dims": 3} if self.spatial_dims == 3 else {}),
                **({"views": list(self.views)} if self.views else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputPipeline:
        if d.get("format") != FORMAT:
            raise DataError(f"Unknown input-pipeline format {d.get('format')!r} (this medclass reads {FORMAT}); the "
                            f"run was made by another version of medclass.")
        return cls(size=int(d["size"]), channels=d["channels"], frame=str(d.get("frame", "middle")),
                   preprocess=config_from_dict(d.get("preprocess", {}), PreprocessConfig, prefix="preprocess."),
                   slice_axis=int(d.get("slice_axis", 2)), normalize=dict(d["normalize"]),
                   expected=dict(d.get("expected", {})), spatial_dims=int(d.get("spatial_dims", 2)),
                   views=tuple(d.get("views", ())))

    @classmethod
    def from_checkpoint_meta(cls, meta: dict[str, Any]) -> InputPipeline:
        """The pipeline a checkpoint records; for a checkpoint written before pipelines were saved, the same
        pipeline re-created from its configuration and normalisation (which is what its training used)."""
        if "pipeline" in meta:
            return cls.from_dict(meta["pipeline"])
        data = meta.get("config", {}).get("data", {})
        prep = config_from_dict(data.get("preprocess", {}), PreprocessConfig, prefix="data.preprocess.")
        norm = meta.get("normalize") or {"kind": "fixed", "mean": meta["mean"], "std": meta["std"]}
        return cls(size=int(meta["input_size"]), channels=int(meta["in_chans"]), preprocess=prep,
                   frame=str(data.get("frame", "middle")), normalize=dict(norm))

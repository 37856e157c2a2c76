"""Weights on disk: safetensors files that carry their own model contract and checksum, and the model they rebuild.

A checkpoint is a safetensors file (a flat table of tensors plus string metadata: no pickle, so loading it
never runs code). Its metadata is self-describing, as nanoGPT's checkpoint dict is: the architecture and its
keyword arguments, classes, channels, input size, task and head, normalisation, the input pipeline and the
whole run configuration, so :func:`medclass.models.build_model` rebuilds the network from the file alone.

Integrity: the metadata holds ``sha256``, the SHA-256 of the tensor bytes, and :func:`load_weights` verifies it,
so a flipped byte anywhere in the file is a :class:`~medclass.errors.CheckpointError` naming the file, never a
silently different model. The header is written with sorted keys and no whitespace (safetensors' own writer
orders metadata by a hash map), so two identical trainings give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import CheckpointError
from ..utils.io import atomic_write_bytes

__all__ = ["save_weights", "load_weights", "read_weights_metadata", "weights_bytes", "sha256_hex", "FORMAT"]

FORMAT = "medclass-weights-1"


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def weights_bytes(state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint: safetensors with JSON-encoded metadata, sorted header and the data's SHA-256."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    raw = st_save(tensors, metadata={k: json.dumps(v, sort_keys=True) for k, v in metadata.items()})
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    header["__metadata__"] = {**header.get("__metadata__", {}), "sha256": sha256_hex(data)}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data section to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + data


def save_weights(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]) -> str:
    """Write ``state_dict`` with ``metadata`` atomically; return the file's SHA-256 (for the run's status)."""
    data = weights_bytes(state_dict, metadata)
    atomic_write_bytes(path, data)
    return sha256_hex(data)


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint: ``(state_dict, metadata)``, its checksum verified; a clear error if it is damaged."""
    path = Path(path)
    data = _read(path)
    meta = _verified_meta(data, path)
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"Checkpoint '{path}' is corrupted or truncated ({e}). {_ADVICE}") from None
    return tensors, meta


def read_weights_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a checkpoint (the whole file is read and its checksum verified)."""
    path = Path(path)
    return _verified_meta(_read(path), path)


_ADVICE = "Re-run training, or restore the run folder from an intact copy."


def _verified_meta(data: bytes, path: Path) -> dict[str, Any]:
    # safetensors layout: 8-byte little-endian header length, then a JSON header holding "__metadata__"
    try:
        if len(data) < 8:
            raise ValueError("the file is shorter than its header")
        n = int.from_bytes(data[:8], "little")
        if n > len(data) - 8:
            raise ValueError("the header is longer than the file")
        header = json.loads(data[8:8 + n])
        raw = header.get("__metadata__", {}) if isinstance(header, dict) else {}
        meta = {k: json.loads(v) for k, v in raw.items() if k != "sha256"}
    except (ValueError, UnicodeDecodeError, TypeError) as e:
        raise CheckpointError(f"Checkpoint '{path}' is corrupted or truncated ({e}). {_ADVICE}") from None
    expected = raw.get("sha256")
    if expected is not None and sha256_hex(memoryview(data)[8 + n:]) != expected:
        raise CheckpointError(f"Checkpoint '{path}' is corrupted or truncated: its tensor data does not match the "
                              f"SHA-256 stored in it when it was written (the file changed on disk). {_ADVICE}")
    return meta


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise CheckpointError(f"Checkpoint '{path}' does not exist.")
    return path.read_bytes()

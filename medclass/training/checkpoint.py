"""Checkpoints that load without running code.

Model weights are stored as safetensors (a flat table of tensors plus string metadata: no pickle). The
resume state (optimiser, scheduler, callbacks, history) is a ``torch.save`` file of tensors, numbers,
strings, lists and dicts, loaded with ``weights_only=True``. Both are written atomically.
"""

from __future__ import annotations

import io
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

__all__ = ["save_weights", "load_weights", "read_weights_metadata", "save_state", "load_state"]


def save_weights(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write ``state_dict`` as safetensors with ``metadata`` (JSON-encoded values) atomically."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    meta = {k: json.dumps(v) for k, v in metadata.items()}
    return atomic_write_bytes(path, st_save(tensors, metadata=meta))


def load_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors checkpoint: ``(state_dict, metadata)``; a clear error if it is damaged."""
    path = Path(path)
    data = _read(path)
    try:
        tensors = st_load(data)
        meta = _decode_meta(data)
    except (SafetensorError, ValueError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"Checkpoint '{path}' is corrupted or truncated ({e}). Re-run training, or resume from "
            f"an intact copy of the run folder."
        ) from None
    return tensors, meta


def read_weights_metadata(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        return _decode_meta(_read(path))
    except (ValueError, json.JSONDecodeError) as e:
        raise CheckpointError(f"Checkpoint '{path}' is corrupted or truncated ({e}).") from None


def _decode_meta(data: bytes) -> dict[str, Any]:
    # safetensors layout: 8-byte little-endian header length, then a JSON header holding "__metadata__".
    if len(data) < 8:
        raise ValueError("file shorter than its header")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise ValueError("header longer than the file")
    header = json.loads(data[8:8 + n])
    return {k: json.loads(v) for k, v in header.get("__metadata__", {}).items()}


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise CheckpointError(f"Checkpoint '{path}' does not exist.")
    return path.read_bytes()


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Load a resume-state file with ``weights_only=True`` (no code runs); a clear error if damaged."""
    path = Path(path)
    data = _read(path)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError... for damaged files
        raise CheckpointError(
            f"Resume state '{path}' is corrupted or truncated ({type(e).__name__}: {str(e).splitlines()[0][:200]}). "
            f"Start the run again with --overwrite."
        ) from None

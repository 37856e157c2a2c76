"""The resume state of a training loop on disk: ``checkpoints/last_state.pt``.

The state (model, optimiser, scheduler, weight average, callbacks, history) is a ``torch.save`` file of
tensors, numbers, strings, lists and dicts, loaded with ``weights_only=True`` so opening it never runs code.
A trailer after the ``torch.save`` bytes holds their SHA-256 (``\\nmedclass-sha256:<hex>\\n``), verified on load:
a damaged file is a :class:`~medclass.errors.CheckpointError` naming it, never a resume into NaN. Files written
before the trailer existed load unverified.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..utils.io import atomic_write_bytes

__all__ = ["save_state", "load_state", "state_bytes"]

_TRAILER = b"\nmedclass-sha256:"
_TRAILER_LEN = len(_TRAILER) + 64 + 1


def state_bytes(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    return data + _TRAILER + hashlib.sha256(data).hexdigest().encode() + b"\n"


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> str:
    """Write the resume state atomically; return the file's SHA-256."""
    data = state_bytes(state)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Load a resume-state file with ``weights_only=True`` (no code runs), its checksum verified."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Resume state '{path}' does not exist.")
    data = path.read_bytes()
    tail = data[-_TRAILER_LEN:]
    if tail.startswith(_TRAILER):
        data, expected = data[:-_TRAILER_LEN], tail[len(_TRAILER):-1].decode("ascii", "replace")
        if hashlib.sha256(data).hexdigest() != expected:
            raise CheckpointError(f"Resume state '{path}' is corrupted or truncated: its contents do not match the "
                                  f"SHA-256 stored in it when it was written (the file changed on disk). Resume is "
                                  f"not possible from it; start the run again with --overwrite, or restore the "
                                  f"folder from an intact copy.")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError... for damaged files
        raise CheckpointError(
            f"Resume state '{path}' is corrupted or truncated ({type(e).__name__}: {str(e).splitlines()[0][:200]}). "
            f"Start the run again with --overwrite."
        ) from None

"""The model catalogue: every registered model's card and parameter counts, written to ``catalog.json``.

``medclass models list`` and ``models info`` read the JSON file instead of importing every family (which loads
PyTorch, torchvision and timm and takes seconds), so listing the zoo is instant. The file is generated from
the live registry; a test checks that it is current. After adding or changing a model, regenerate it::

    python -m medclass.models.catalog
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ._factory import count_parameters
from ._registry import get_model_card, list_models

__all__ = ["registry_catalog", "write_catalog", "CATALOG"]

CATALOG = Path(__file__).with_name("catalog.json")


def registry_catalog() -> dict[str, dict[str, Any]]:
    """Name -> card fields plus parameter counts (1 channel at the default size; 3 channels at 224 px; 2 classes)."""
    out = {}
    for name in list_models():
        card = dataclasses.asdict(get_model_card(name))
        card["params"] = count_parameters(name)
        card["params_224_rgb"] = count_parameters(name, in_chans=3, input_size=224)
        out[name] = json.loads(json.dumps(card))  # tuples as lists, as the file holds them
    return out


def write_catalog(path: Path = CATALOG) -> Path:
    path.write_text(json.dumps(registry_catalog(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover
    print(f"wrote {write_catalog(Path(sys.argv[1]) if len(sys.argv) > 1 else CATALOG)}")

"""Jinja2 rendering of the report's templates (``medclass/reports/templates/``), autoescaping on.

Every value reaches the page through a template variable, so a class name, a metadata value or a
configuration string is escaped however it was spelled; figures go in as PNG bytes and come out as
data URIs, so a page stays one self-contained file.
"""

from __future__ import annotations

import base64
import functools
import math
from typing import Any

import jinja2

__all__ = ["render", "num", "interval", "data_uri"]


def num(v: Any, digits: int = 3) -> str:
    """A number to ``digits`` decimals, 'n/a' for None or NaN; other values as text."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def interval(iv: dict | None, digits: int = 3) -> str:
    """``estimate [low, high]`` of an interval dict, '' when there is none."""
    if not iv:
        return ""
    return f"{num(iv['estimate'], digits)} [{num(iv['low'], digits)}, {num(iv['high'], digits)}]"


def pct(v: Any, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{100 * v:.{digits}f}%"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("medclass.reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, interval=interval, pct=pct, data_uri=data_uri)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context`` (autoescaped; an undefined name is an error)."""
    return _environment().get_template(template).render(**context)

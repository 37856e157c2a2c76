"""Reports built from finished run folders (they never train or score)."""

from .html import SECTIONS, build_report

__all__ = ["build_report", "SECTIONS"]

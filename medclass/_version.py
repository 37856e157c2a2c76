"""The version of medclass, in one place (a bottom module every layer may read)."""

__version__ = "0.2.0"
